// Asks llama.cpp itself (node-llama-cpp's prebuilt CPU binaries) for the full next-token
// distribution at every position of every document, for the GGUF proof tests.
//
//   node tests/llama/next_token.mjs --corpus CORPUS.jsonl [--threads 2]
//       --model FILE.gguf --out LOGPROBS.json [--model FILE2.gguf --out LOGPROBS2.json ...]
//
// CORPUS: JSON Lines {"input_ids": [...], "id": optional}, one document per line, as for
// `moeslice logits`. Each document is evaluated from position 0 in a fresh sequence (CPU, no
// build, F32 KV cache, no flash attention, greedy sampling so no sampler filter cuts the
// distribution). OUT: {"model", "vocab", "docs": [{"id", "logprobs": [[vocab] per position]}]}
// with natural-log probabilities (llama.cpp's softmax in float32, logged in float64).
// A failed load exits 1 and prints the llama.cpp log lines that say why (the exception itself
// only says "Failed to load model").
import fs from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

function parseArgs(argv) {
  const usage = "usage: next_token.mjs --corpus CORPUS.jsonl [--threads N] --model FILE.gguf --out OUT.json [--model ... --out ...]";
  const args = { threads: 2, jobs: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${usage}; '${argv[i]}' needs a value`);
    if (key === "corpus") args.corpus = value;
    else if (key === "threads") args.threads = Number(value);
    else if (key === "model") args.jobs.push({ model: value });
    else if (key === "out" && args.jobs.length > 0 && !args.jobs.at(-1).out) args.jobs.at(-1).out = value;
    else throw new Error(`${usage}; unexpected '${argv[i]}'`);
  }
  if (!args.corpus || args.jobs.length === 0 || args.jobs.some((job) => !job.out)) throw new Error(usage);
  return args;
}

function readCorpus(file) {
  const docs = [];
  fs.readFileSync(file, "utf8").split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const record = JSON.parse(line);
    if (!Array.isArray(record.input_ids) || record.input_ids.length === 0) {
      throw new Error(`${file}:${index + 1}: expected a non-empty "input_ids" list`);
    }
    docs.push({ id: record.id ?? String(docs.length), ids: record.input_ids });
  });
  return docs;
}

const logLines = [];
function failWithLog(message) {
  console.error(`next_token: ${message}`);
  const relevant = logLines.filter((line) => !line.startsWith("[debug]") && !line.startsWith("[info]"));
  for (const line of (relevant.length > 0 ? relevant : logLines).slice(-40)) console.error(`  llama.cpp ${line}`);
  process.exit(1);
}

async function evaluate(llama, job, docs, threads) {
  let model;
  try {
    model = await llama.loadModel({ modelPath: path.resolve(job.model), gpuLayers: 0 });
  } catch (error) {
    // The reason arrives through the log callback, sometimes just after the exception.
    await new Promise((resolve) => setTimeout(resolve, 100));
    failWithLog(`${job.model}: ${error.message}`);
  }
  const contextSize = Math.max(32, ...docs.map((doc) => doc.ids.length));
  const context = await model.createContext({
    contextSize,
    batchSize: contextSize,
    sequences: 1,
    threads,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const out = { model: job.model, vocab: null, docs: [] };
  for (const doc of docs) {
    await sequence.clearHistory();
    const results = await sequence.controlledEvaluate(
      doc.ids.map((token) => [token, { generateNext: { probabilities: true, options: { temperature: 0 } } }]),
    );
    const rows = results.map((result, position) => {
      const probabilities = result?.next?.probabilities;
      if (!probabilities) failWithLog(`${job.model}: document ${doc.id}: no distribution at position ${position}`);
      const row = new Array(probabilities.size);
      for (const [token, probability] of probabilities) row[token] = Math.log(probability);
      return row;
    });
    out.vocab ??= rows[0].length;
    for (const [position, row] of rows.entries()) {
      if (row.length !== out.vocab || row.some((value) => value === undefined || !Number.isFinite(value))) {
        failWithLog(`${job.model}: document ${doc.id} position ${position}: ${row.length} probabilities, expected ${out.vocab}, all positive`);
      }
    }
    out.docs.push({ id: doc.id, logprobs: rows });
  }
  await context.dispose();
  await model.dispose();
  const tmp = `${job.out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(out));
  fs.renameSync(tmp, job.out);
  logLines.length = 0;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const docs = readCorpus(args.corpus);
  const llama = await getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: LlamaLogLevel.debug,
    logger: (level, message) => logLines.push(`[${level}] ${message.trimEnd()}`),
  });
  for (const job of args.jobs) await evaluate(llama, job, docs, args.threads);
}

main().catch((error) => failWithLog(error.stack ?? String(error)));
