// Corpus and multiple-choice task readers: every input shape (JSON Lines text or ids, --field,
// plain text, directories, stdin), limits, BOS, domains, one handcrafted bad record per failure
// kind (the message names file:line), --skip-bad counts, streaming in bounded memory, and the
// lm-eval context/continuation tokenisation.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "test_util.h"
#include "text/corpus.h"
#include "text/mc_tasks.h"
#include "text/tokenizer.h"

namespace moeslice {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

const fs::path kData = MOESLICE_TEST_DATA;

const Tokenizer& olmoe() {
  static const Tokenizer t = Tokenizer::from_file(kData / "tokenizers/olmoe-tokenizer.json");
  return t;
}

// The OLMoE tokenizer with a post-processor that puts <|endoftext|> (50279) first: a BOS.
const Tokenizer& olmoe_with_bos() {
  static const Tokenizer t = [] {
    nlohmann::json json =
        nlohmann::json::parse(test::read_text(kData / "tokenizers/olmoe-tokenizer.json"));
    json["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", nlohmann::json::array()},
        {"special_tokens",
         {{"<|endoftext|>",
           {{"id", "<|endoftext|>"}, {"ids", {50279}}, {"tokens", {"<|endoftext|>"}}}}}}};
    return Tokenizer::from_json_text(json.dump(), "olmoe+bos");
  }();
  return t;
}

CorpusOptions text_options(int64_t vocab = 50304) {
  CorpusOptions options;
  options.tokenizer = olmoe();
  options.vocab = vocab;
  return options;
}

std::vector<CorpusDocument> read_all(const fs::path& path, CorpusOptions options,
                                     CorpusStats* stats = nullptr) {
  return read_corpus(path, std::move(options), stats);
}

// Resident set size now, in bytes (Linux /proc/self/statm).
size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

size_t peak_resident_bytes() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<size_t>(usage.ru_maxrss) * 1024;
}

}  // namespace

TEST_CASE("JSON Lines text: tokenised, ids and domains kept, blank lines and CRLF") {
  const TempDir dir;
  test::write_file(dir / "c.jsonl",
                   "\xEF\xBB\xBF{\"text\": \"Hello world\", \"id\": \"a\", \"domain\": \"code\"}\n"
                   "\n   \n"
                   "{\"text\": \"The cat sat.\", \"id\": 7}\r\n"
                   "{\"text\": \"caf\\u00e9\", \"domain\": null}");
  CorpusOptions options = text_options();
  options.default_domain = "web";
  CorpusStats stats;
  const auto docs = read_all(dir / "c.jsonl", options, &stats);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].id == "a");
  CHECK(docs[0].domain == "code");
  CHECK(docs[0].tokens == olmoe().encode("Hello world"));
  CHECK(docs[0].line == 1);
  CHECK(docs[0].source == (dir / "c.jsonl").string());
  CHECK(docs[1].id == "7");
  CHECK(docs[1].domain == "web");
  CHECK(docs[1].line == 4);
  CHECK(docs[1].tokens == olmoe().encode("The cat sat."));
  CHECK(docs[2].id == "2");  // the record index
  CHECK(docs[2].tokens == olmoe().encode("caf\xC3\xA9"));
  CHECK(stats.documents == 3);
  CHECK(stats.tokens == static_cast<int64_t>(docs[0].tokens.size() + docs[1].tokens.size() +
                                             docs[2].tokens.size()));
  CHECK_FALSE(stats.limited);
}

TEST_CASE("JSON Lines: input_ids preferred, --field picks a text or an id field") {
  const TempDir dir;
  test::write_file(dir / "c.jsonl",
                   "{\"text\": \"Hello\", \"input_ids\": [5, 6], \"body\": \"Goodbye\", "
                   "\"ids2\": [9]}\n");
  CHECK(read_all(dir / "c.jsonl", text_options())[0].tokens == std::vector<int32_t>{5, 6});
  CorpusOptions options = text_options();
  options.field = "body";
  CHECK(read_all(dir / "c.jsonl", options)[0].tokens == olmoe().encode("Goodbye"));
  options.field = "ids2";
  CHECK(read_all(dir / "c.jsonl", options)[0].tokens == std::vector<int32_t>{9});
  options.field = "text";
  CHECK(read_all(dir / "c.jsonl", options)[0].tokens == olmoe().encode("Hello"));
  options.field = "title";
  test::check_mentions(
      test::thrown_message<FormatError>([&] { read_all(dir / "c.jsonl", options); }),
      {"c.jsonl:1: ", "missing \"title\""});

  // Token ids need no tokenizer; text does, and that is not a skippable record error.
  CorpusOptions no_tokenizer;
  no_tokenizer.vocab = 10;
  CHECK(read_all(dir / "c.jsonl", no_tokenizer)[0].tokens == std::vector<int32_t>{5, 6});
  test::write_file(dir / "t.jsonl", "{\"input_ids\": [1]}\n{\"text\": \"x\"}\n");
  no_tokenizer.skip_bad = true;
  const std::string message =
      test::thrown_message<InputError>([&] { read_all(dir / "t.jsonl", no_tokenizer); });
  test::check_mentions(message, {"t.jsonl:2", "needs a tokenizer", "--tokenizer"});
}

TEST_CASE("plain text: the whole file, or one document per non-blank line") {
  const TempDir dir;
  const std::string text = "First line.\n\nSecond line,\r\n  \nthird.\n";
  test::write_file(dir / "notes.txt", text);
  auto docs = read_all(dir / "notes.txt", text_options());
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].id == "notes.txt");
  CHECK(docs[0].tokens == olmoe().encode(text));

  CorpusOptions options = text_options();
  options.one_doc_per_line = true;
  options.default_domain = "notes";
  docs = read_all(dir / "notes.txt", options);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].tokens == olmoe().encode("First line."));
  CHECK(docs[1].tokens == olmoe().encode("Second line,"));
  CHECK(docs[1].line == 3);
  CHECK(docs[1].id == "1");
  CHECK(docs[2].line == 5);
  CHECK(docs[2].domain == "notes");

  // --format text reads a .jsonl name as text; --format jsonl reads any name as JSON Lines.
  test::write_file(dir / "looks.jsonl", "{\"text\": \"a\"}\n");
  options = text_options();
  options.format = CorpusFormat::text;
  CHECK(read_all(dir / "looks.jsonl", options)[0].tokens == olmoe().encode("{\"text\": \"a\"}\n"));
  test::write_file(dir / "data.txt", "{\"text\": \"a\"}\n");
  options.format = CorpusFormat::jsonl;
  CHECK(read_all(dir / "data.txt", options)[0].tokens == olmoe().encode("a"));

  // Other names: the first non-blank byte decides ('{' is JSON Lines); empty is JSON Lines.
  test::write_file(dir / "corpus.ids", "\n  {\"input_ids\": [4]}\n");
  CHECK(read_all(dir / "corpus.ids", text_options())[0].tokens == std::vector<int32_t>{4});
  test::write_file(dir / "main.c", "int main() {}\n");
  CHECK(read_all(dir / "main.c", text_options())[0].tokens == olmoe().encode("int main() {}\n"));
  test::write_file(dir / "brace.md", "{ not json }\n");
  CHECK(read_all(dir / "brace.md", text_options())[0].id == "brace.md");
  test::check_mentions(
      test::thrown_message<InputError>([&] { read_all("/dev/null", text_options()); }),
      {"/dev/null", "no documents"});

  // Plain text without a tokenizer is refused up front.
  CorpusOptions no_tokenizer;
  test::check_mentions(test::thrown_message<InputError>(
                           [&] { CorpusReader reader(dir / "notes.txt", no_tokenizer); }),
                       {"notes.txt", "plain text", "needs a tokenizer"});
  // One document per line is for text.
  options = text_options();
  options.one_doc_per_line = true;
  test::check_mentions(
      test::thrown_message<InputError>([&] { CorpusReader reader(dir / "looks.jsonl", options); }),
      {"looks.jsonl", "JSON Lines"});
}

TEST_CASE("directory: one document per file, sorted relative paths, binary and empty skipped") {
  const TempDir dir;
  const fs::path root = dir / "docs";
  fs::create_directories(root / "src" / "deep");
  fs::create_directories(root / ".git");
  test::write_file(root / "b.md", "# Title\n");
  test::write_file(root / "a.txt", "alpha");
  test::write_file(root / "src" / "main.py", "print('hi')\n");
  test::write_file(root / "src" / "deep" / "x.c", "int x;\n");
  test::write_file(root / ".git" / "HEAD", "ref: refs/heads/main\n");  // hidden: not read
  test::write_file(root / ".hidden.txt", "secret");
  test::write_file(root / "image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  test::write_file(root / "latin1.txt", "caf\xE9");
  test::write_file(root / "__init__.py", "");
  CorpusStats stats;
  const auto docs = read_all(root, text_options(), &stats);
  std::vector<std::string> ids;
  for (const auto& doc : docs) ids.push_back(doc.id);
  CHECK(ids == std::vector<std::string>{"a.txt", "b.md", "src/deep/x.c", "src/main.py"});
  CHECK(docs[2].tokens == olmoe().encode("int x;\n"));
  CHECK(docs[3].source == (root / "src" / "main.py").string());
  CHECK(stats.skipped_binary == 2);
  CHECK(stats.skipped_empty_files == 1);

  CorpusOptions options = text_options();
  options.format = CorpusFormat::jsonl;
  CHECK_THROWS_AS(CorpusReader(root, options), InputError);
  const fs::path binary_only = dir / "bin";
  fs::create_directories(binary_only);
  test::write_file(binary_only / "x.bin", std::string("\0\1\2", 3));
  test::check_mentions(
      test::thrown_message<InputError>([&] { read_all(binary_only, text_options()); }),
      {"bin", "no documents", "1 binary"});
}

TEST_CASE("stdin: '-' is JSON Lines") {
  const TempDir dir;
  test::write_file(dir / "in.jsonl",
                   "{\"input_ids\": [3, 4], \"domain\": \"x\"}\n{\"text\": \"hi\"}\n");
  const int saved = ::dup(STDIN_FILENO);
  const int fd = ::open((dir / "in.jsonl").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  std::vector<CorpusDocument> docs;
  std::string error;
  try {
    docs = read_all("-", text_options());
  } catch (const std::exception& e) {
    error = e.what();
  }
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  CHECK(error.empty());
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].tokens == std::vector<int32_t>{3, 4});
  CHECK(docs[0].domain == "x");
  CHECK(docs[1].source == "<stdin>");
  CHECK(docs[1].tokens == olmoe().encode("hi"));
}

TEST_CASE("limits: max_docs, max_tokens (stop after the document reaching N), add_bos") {
  const TempDir dir;
  test::write_file(dir / "c.jsonl",
                   "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4, 5]}\n{\"input_ids\": [6]}\n"
                   "{\"input_ids\": [7, 8]}\n");
  CorpusOptions options;
  options.vocab = 100;
  options.max_docs = 2;
  CorpusStats stats;
  CHECK(read_all(dir / "c.jsonl", options, &stats).size() == 2);
  CHECK(stats.limited);
  options.max_docs = 0;
  options.max_tokens = 4;  // 3 < 4, then 3 + 2 = 5 >= 4: two documents
  CHECK(read_all(dir / "c.jsonl", options).size() == 2);
  options.max_tokens = 3;
  CHECK(read_all(dir / "c.jsonl", options).size() == 1);
  options.max_tokens = 1000;
  CHECK(read_all(dir / "c.jsonl", options, &stats).size() == 4);
  CHECK_FALSE(stats.limited);

  CorpusOptions bos;
  bos.tokenizer = olmoe_with_bos();
  bos.vocab = 50304;
  bos.add_bos = true;
  bos.max_tokens = 5;  // the BOS counts
  const auto docs = read_all(dir / "c.jsonl", bos);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].tokens == std::vector<int32_t>{50279, 1, 2, 3});
  CHECK(docs[1].tokens == std::vector<int32_t>{50279, 4, 5});

  CorpusOptions no_bos = text_options();
  no_bos.add_bos = true;
  test::check_mentions(
      test::thrown_message<InputError>([&] { CorpusReader reader(dir / "c.jsonl", no_bos); }),
      {"olmoe-tokenizer.json", "no BOS token"});
  CorpusOptions bos_without_tokenizer;
  bos_without_tokenizer.add_bos = true;
  CHECK_THROWS_AS(CorpusReader(dir / "c.jsonl", bos_without_tokenizer), InputError);
}

TEST_CASE("every bad record kind names file:line; --skip-bad counts and continues") {
  const TempDir dir;
  struct Bad {
    const char* line;
    const char* says;
  };
  const Bad bads[] = {
      {"{\"text\": \"ok\"", "invalid JSON"},
      {"[1, 2]", "expected a JSON object"},
      {"{\"id\": 3}", "missing \"text\" (or \"input_ids\")"},
      {"{\"input_ids\": [1, \"x\"]}", "input_ids[1] is \"x\", expected an integer"},
      {"{\"input_ids\": [1.5]}", "expected an integer"},
      {"{\"input_ids\": [-1]}", "outside the model's vocabulary"},
      {"{\"input_ids\": [50304]}", "outside the model's vocabulary [0, 50304)"},
      {"{\"input_ids\": [99999999999]}", "outside the model's vocabulary"},
      {"{\"input_ids\": []}", "empty document"},
      {"{\"text\": \"\"}", "empty document"},
      {"{\"text\": 5}", "must be a string (text) or a list of token ids"},
      {"{\"text\": \"caf\xE9\"}", "UTF-8"},
      {"{\"text\": \"a\", \"domain\": 3}", "\"domain\" must be a string"},
      {"{\"text\": \"a\", \"id\": [1]}", "\"id\" must be a string or a number"},
  };
  for (const Bad& bad : bads) {
    CAPTURE(bad.line);
    test::write_file(dir / "bad.jsonl", std::string("{\"text\": \"fine\"}\n\n") + bad.line +
                                            "\n{\"text\": \"also\"}\n");
    test::check_mentions(
        test::thrown_message<FormatError>([&] { read_all(dir / "bad.jsonl", text_options()); }),
        {"bad.jsonl:3: ", bad.says});
    CorpusOptions skip = text_options();
    skip.skip_bad = true;
    CorpusStats stats;
    const auto docs = read_all(dir / "bad.jsonl", skip, &stats);
    CHECK(docs.size() == 2);
    CHECK(docs[1].id == "2");  // ids count the skipped record
    CHECK(stats.skipped_bad == 1);
    REQUIRE(stats.skipped_examples.size() == 1);
    CHECK(stats.skipped_examples[0].find("bad.jsonl:3: ") != std::string::npos);
  }

  // Plain text: invalid UTF-8 is reported at its own line.
  test::write_file(dir / "bad.txt", "good\nstill good\nbad \xC0\xAF here\n");
  test::check_mentions(
      test::thrown_message<FormatError>([&] { read_all(dir / "bad.txt", text_options()); }),
      {"bad.txt:3: ", "invalid UTF-8", "0xC0"});
  CorpusOptions lines = text_options();
  lines.one_doc_per_line = true;
  lines.skip_bad = true;
  CorpusStats stats;
  CHECK(read_all(dir / "bad.txt", lines, &stats).size() == 2);
  CHECK(stats.skipped_bad == 1);
  for (const char* surrogate : {"\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE0\x80\xAF", "\xE2\x82"}) {
    test::write_file(dir / "bad.txt", std::string("x ") + surrogate);
    CHECK_THROWS_AS(read_all(dir / "bad.txt", text_options()), FormatError);
  }
  test::write_file(dir / "empty.txt", "");
  test::check_mentions(
      test::thrown_message<FormatError>([&] { read_all(dir / "empty.txt", text_options()); }),
      {"empty.txt:1: ", "empty document"});

  // Nothing left after skipping, a corpus of blank lines, a missing file: InputError.
  test::write_file(dir / "all_bad.jsonl", "{\n{\"input_ids\": []}\n");
  CorpusOptions skip = text_options();
  skip.skip_bad = true;
  test::check_mentions(
      test::thrown_message<InputError>([&] { read_all(dir / "all_bad.jsonl", skip); }),
      {"all_bad.jsonl", "no documents", "2 bad records skipped"});
  test::write_file(dir / "blank.jsonl", "\n\n");
  test::check_mentions(
      test::thrown_message<InputError>([&] { read_all(dir / "blank.jsonl", text_options()); }),
      {"blank.jsonl", "no documents"});
  test::check_mentions(
      test::thrown_message<InputError>([&] { read_all(dir / "missing.jsonl", text_options()); }),
      {"missing.jsonl", "no such"});
}

TEST_CASE("the tokenizer's ids are checked against the model's vocabulary") {
  const TempDir dir;
  test::write_file(dir / "c.jsonl", "{\"text\": \"Hello world\"}\n");
  const auto ids = olmoe().encode("Hello world");
  CorpusOptions small = text_options(*std::max_element(ids.begin(), ids.end()));
  test::check_mentions(test::thrown_message<FormatError>([&] { read_all(dir / "c.jsonl", small); }),
                       {"c.jsonl:1: ", "tokenizer and model do not match"});
}

TEST_CASE("streaming: a 50 MB corpus is read one document at a time in bounded memory") {
  const TempDir dir;
  const fs::path path = dir / "big.jsonl";
  size_t file_bytes = 0;
  int64_t lines = 0;
  {
    std::ofstream out(path, std::ios::binary);
    std::string line;
    while (file_bytes < (size_t{50} << 20)) {
      line = "{\"id\": " + std::to_string(lines) + ", \"domain\": \"d" + std::to_string(lines % 3) +
             "\", \"input_ids\": [";
      for (int i = 0; i < 256; ++i) line += std::to_string((lines * 31 + i) % 50000) + ",";
      line.back() = ']';
      line += "}\n";
      out << line;
      file_bytes += line.size();
      ++lines;
    }
  }
  const size_t peak_before = peak_resident_bytes();
  const size_t before = resident_bytes();
  size_t largest_growth = 0;
  CorpusOptions options;
  options.vocab = 50304;
  CorpusReader reader(path, options);
  CHECK(reader.total_bytes() == file_bytes);
  int64_t documents = 0;
  while (auto document = reader.next()) {
    if (document->tokens.size() != 256 || document->id != std::to_string(documents)) {
      FAIL_CHECK("document " << documents << " read wrong");
      break;
    }
    if (++documents % 1000 == 0) {
      const size_t now = resident_bytes();
      largest_growth = std::max(largest_growth, now > before ? now - before : 0);
    }
  }
  CHECK(documents == lines);
  CHECK(reader.bytes_read() == file_bytes);
  CHECK(reader.stats().tokens == lines * 256);
  MESSAGE("file " << file_bytes / (1 << 20) << " MiB, resident growth "
                  << largest_growth / (1 << 20) << " MiB, peak growth "
                  << (peak_resident_bytes() - peak_before) / (1 << 20) << " MiB");
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed blocks in quarantine (256 MB), so resident memory grows anyway.
  MESSAGE("memory bounds not checked under AddressSanitizer");
#else
  CHECK(largest_growth < file_bytes / 8);
  CHECK(peak_resident_bytes() - peak_before < file_bytes / 8);
#endif
}

TEST_CASE("read_token_corpus keeps its contract") {
  const TempDir dir;
  test::write_file(dir / "ok.txt", "{\"input_ids\": [1, 2], \"id\": \"a\"}\n");
  const auto docs = read_token_corpus(dir / "ok.txt", 10);  // JSON Lines whatever the name
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].tokens == std::vector<int32_t>{1, 2});
}

// ---- multiple-choice tasks ----

TEST_CASE("mc tasks: lm-eval context/continuation split, trailing space moved, fallback") {
  const Tokenizer& t = olmoe();
  const std::vector<std::string> choices = {" Paris", " London"};
  McEncoding encoding = encode_mc_task(t, "The capital of France is", choices);
  CHECK(encoding.context == t.encode("The capital of France is"));
  for (size_t i = 0; i < choices.size(); ++i) {
    std::vector<int32_t> whole = encoding.context;
    whole.insert(whole.end(), encoding.choices[i].begin(), encoding.choices[i].end());
    CHECK(whole == t.encode("The capital of France is" + choices[i]));
    CHECK_FALSE(encoding.fallback[i]);
  }
  // "Answer: " + "Paris" is scored as "Answer:" + " Paris".
  const std::vector<std::string> bare = {"Paris"};
  encoding = encode_mc_task(t, "Answer: ", bare);
  CHECK(encoding.context == t.encode("Answer:"));
  std::vector<int32_t> whole = encoding.context;
  whole.insert(whole.end(), encoding.choices[0].begin(), encoding.choices[0].end());
  CHECK(whole == t.encode("Answer: Paris"));
  // The boundary merges ("wor" + "ld" is one token "world"): the choice is tokenised alone.
  const std::vector<std::string> suffix = {"ld"};
  encoding = encode_mc_task(t, "Hello wor", suffix);
  CHECK(encoding.context == t.encode("Hello wor"));
  CHECK(encoding.fallback[0]);
  CHECK(encoding.choices[0] == t.encode("ld"));
}

TEST_CASE("mc tasks: reading, ids, domains, bos, and every bad record") {
  const TempDir dir;
  test::write_file(
      dir / "tasks.jsonl",
      "{\"context\": \"2 + 2 =\", \"choices\": [\" 4\", \" 5\", \" 22\"], \"answer\": 0, "
      "\"id\": \"q1\", \"domain\": \"math\"}\n\n"
      "{\"context\": \"The sky is\", \"choices\": [\" green\", \" blue\"], \"answer\": 1}\n");
  McTaskStats stats;
  auto tasks = read_mc_tasks(dir / "tasks.jsonl", McTaskOptions{olmoe()}, &stats);
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].id == "q1");
  CHECK(tasks[0].domain == "math");
  CHECK(tasks[0].choices.size() == 3);
  CHECK(tasks[0].choice_bytes == std::vector<size_t>{2, 2, 3});
  CHECK(tasks[0].context == olmoe().encode("2 + 2 ="));
  CHECK(tasks[1].id == "1");
  CHECK(tasks[1].answer == 1);
  CHECK(tasks[1].line == 3);
  CHECK(stats.tasks == 2);

  McTaskOptions bos{olmoe_with_bos()};
  bos.add_bos = true;
  tasks = read_mc_tasks(dir / "tasks.jsonl", bos);
  CHECK(tasks[0].context.front() == 50279);
  McTaskOptions no_bos{olmoe()};
  no_bos.add_bos = true;
  CHECK_THROWS_AS(McTaskReader(dir / "tasks.jsonl", no_bos), InputError);

  struct Bad {
    const char* line;
    const char* says;
  };
  const Bad bads[] = {
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"]", "invalid JSON"},
      {"{\"choices\": [\" b\", \" c\"], \"answer\": 0}", "missing \"context\""},
      {"{\"context\": \"a\", \"answer\": 0}", "missing \"choices\""},
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"]}", "missing \"answer\""},
      {"{\"context\": 1, \"choices\": [\" b\", \" c\"], \"answer\": 0}", "\"context\" must be"},
      {"{\"context\": \"a\", \"choices\": \" b\", \"answer\": 0}", "\"choices\" must be a list"},
      {"{\"context\": \"a\", \"choices\": [\" b\"], \"answer\": 0}", "expected at least 2"},
      {"{\"context\": \"a\", \"choices\": [\" b\", 3], \"answer\": 0}", "choices[1] must be"},
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": 2}",
       "\"answer\" is 2, but there are 2 choices"},
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": -1}", "\"answer\" is -1"},
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": \"b\"}",
       "expected the index"},
      {"{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": true}",
       "expected the index"},
      {"{\"context\": \"a\", \"choices\": [\" b\", \"\"], \"answer\": 0}", "choices[1] is empty"},
      {"{\"context\": \"\", \"choices\": [\" b\", \" c\"], \"answer\": 0}", "empty \"context\""},
      {"{\"context\": \"\xFF\", \"choices\": [\" b\", \" c\"], \"answer\": 0}", "UTF-8"},
  };
  for (const Bad& bad : bads) {
    CAPTURE(bad.line);
    test::write_file(dir / "bad.jsonl",
                     std::string("{\"context\": \"x\", \"choices\": [\" y\", \" z\"], "
                                 "\"answer\": 1}\n") +
                         bad.line + "\n");
    test::check_mentions(test::thrown_message<FormatError>(
                             [&] { read_mc_tasks(dir / "bad.jsonl", McTaskOptions{olmoe()}); }),
                         {"bad.jsonl:2: ", bad.says});
    McTaskOptions skip{olmoe()};
    skip.skip_bad = true;
    McTaskStats skipped;
    CHECK(read_mc_tasks(dir / "bad.jsonl", skip, &skipped).size() == 1);
    CHECK(skipped.skipped_bad == 1);
  }
}

}  // namespace moeslice
