// Asks llama.cpp itself (node-llama-cpp's prebuilt CPU binaries) how a GGUF file's own tokenizer
// splits texts, for the GGUF tokenizer test (tests/cli/gguf_tokenizer.sh).
//
//   node tests/llama/tokenize.mjs --model FILE.gguf --texts TEXTS.json --out IDS.json
//
// TEXTS: a JSON list of strings. OUT: a JSON list of id lists, one per text, from
// llama_tokenize with special-token parsing on (control tokens written in the text become their
// ids, as Hugging Face tokenizers match added tokens) and no BOS/EOS added. Only the vocabulary
// is loaded. A failed load exits 1 and prints the llama.cpp log lines that say why.
import fs from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const usage = "usage: tokenize.mjs --model FILE.gguf --texts TEXTS.json --out IDS.json";
const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "");
  if (!["model", "texts", "out"].includes(key) || argv[i + 1] === undefined) {
    console.error(usage);
    process.exit(2);
  }
  args[key] = argv[i + 1];
}
if (!args.model || !args.texts || !args.out) {
  console.error(usage);
  process.exit(2);
}

const logLines = [];
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.debug,
  logger: (level, message) => logLines.push(`[${level}] ${message.trimEnd()}`),
});
let model;
try {
  model = await llama.loadModel({ modelPath: path.resolve(args.model), gpuLayers: 0, vocabOnly: true });
} catch (error) {
  console.error(`tokenize: ${args.model}: ${error.message}`);
  for (const line of logLines.filter((l) => !l.startsWith("[debug]")).slice(-40)) console.error(`  llama.cpp ${line}`);
  process.exit(1);
}
const texts = JSON.parse(fs.readFileSync(args.texts, "utf8"));
const ids = texts.map((text) => Array.from(model.tokenize(text, true)));
fs.writeFileSync(args.out, JSON.stringify(ids));
await model.dispose();
await llama.dispose();
