// JSON Lines token corpus reader.
#include "forward/token_corpus.h"

#include <fstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace moeslice {

std::vector<TokenDocument> read_token_corpus(const std::filesystem::path& path, int64_t vocab) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the corpus file", path.string()));
  std::vector<TokenDocument> documents;
  std::string text;
  size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    auto fail = [&](const std::string& what) {
      throw FormatError(fmt::format("{}:{}: {}", path.string(), line, what));
    };
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {
      // nlohmann's message starts with its own error id; keep the part that says what broke.
      const std::string message = error.what();
      const auto colon = message.find("parse error");
      fail("invalid JSON (" + (colon == std::string::npos ? message : message.substr(colon)) + ")");
    }
    if (!object.is_object()) fail("expected a JSON object {\"input_ids\": [...]}");
    if (!object.contains("input_ids")) fail("missing \"input_ids\"");
    const nlohmann::json& ids = object["input_ids"];
    if (!ids.is_array()) fail(fmt::format("\"input_ids\" must be a list, found {}", ids.type_name()));
    if (ids.empty()) fail("empty document (\"input_ids\" is [])");
    TokenDocument document;
    document.line = line;
    document.tokens.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const nlohmann::json& id = ids[i];
      if (!id.is_number_integer())
        fail(fmt::format("input_ids[{}] is {}, expected an integer token id", i, id.dump()));
      const int64_t value = id.get<int64_t>();
      if (value < 0 || value >= vocab)
        fail(fmt::format("input_ids[{}] is {}, outside the model's vocabulary [0, {})", i, value,
                         vocab));
      document.tokens.push_back(static_cast<int32_t>(value));
    }
    if (object.contains("id") && object["id"].is_string())
      document.id = object["id"].get<std::string>();
    else if (object.contains("id") && !object["id"].is_null())
      document.id = object["id"].dump();
    else
      document.id = std::to_string(documents.size());
    documents.push_back(std::move(document));
  }
  if (in.bad()) throw InputError(fmt::format("{}: read error", path.string()));
  if (documents.empty())
    throw InputError(fmt::format("{}: no documents (expected one JSON object per line)",
                                 path.string()));
  return documents;
}

}  // namespace moeslice
