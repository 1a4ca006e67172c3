// Parsing and checking the forward-refusal rules of a family profile.
#include "model/config_refusal.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include <fmt/core.h>

#include "common/json_parse.h"

#include "model/dim_expression.h"
#include "model/model_spec.h"

namespace moeslice {
namespace {

using nlohmann::json;

const std::map<std::string, RefuseCondition, std::less<>>& condition_names() {
  static const std::map<std::string, RefuseCondition, std::less<>> names = {
      {"set", RefuseCondition::kSet},
      {"truthy", RefuseCondition::kTruthy},
      {"not_object", RefuseCondition::kNotObject},
      {"not_one_of", RefuseCondition::kNotOneOf},
      {"not_each_equal_to", RefuseCondition::kNotEachEqualTo},
      {"flag_with_dim", RefuseCondition::kFlagWithDim},
      {"dims_differ", RefuseCondition::kDimsDiffer}};
  return names;
}

// Python truthiness of a JSON value, as the reference's `if c.get(key)` tests it.
bool truthy(const json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) return value.get<double>() != 0;
  if (value.is_string() || value.is_array() || value.is_object()) return !value.empty();
  return true;
}

// The value at `key` ("a.b": key b of the object at a), or nullptr when absent.
const json* find_key(const json& config, std::string_view key) {
  const json* at = &config;
  for (size_t begin = 0;;) {
    const size_t dot = std::min(key.find('.', begin), key.size());
    const std::string part(key.substr(begin, dot - begin));
    if (!at->is_object() || !at->contains(part)) return nullptr;
    at = &(*at)[part];
    if (dot == key.size()) return at;
    begin = dot + 1;
  }
}

// `why` with every "{...}" replaced by `replace(what is inside)`.
std::string substitute_placeholders(std::string_view why,
                                    const std::function<std::string(std::string_view)>& replace) {
  std::string out;
  size_t done = 0;
  for (size_t open = why.find('{'); open != std::string_view::npos; open = why.find('{', done)) {
    const size_t close = why.find('}', open);
    if (close == std::string_view::npos)
      throw std::invalid_argument(fmt::format("'{}': unclosed '{{'", why));
    out += why.substr(done, open - done);
    out += replace(why.substr(open + 1, close - open - 1));
    done = close + 1;
  }
  return out += why.substr(done);
}

int64_t evaluate(const std::string& expression, const ModelSpec& spec) {
  return evaluate_dim_expression(
      expression, [&spec](std::string_view name) { return spec.dim(*from_name<Dim>(name)); });
}

std::string expand(std::string_view why, const json* value, const ModelSpec& spec) {
  return substitute_placeholders(why, [&](std::string_view inside) {
    if (inside == "value") return value ? json_excerpt(*value) : std::string("null");
    return std::to_string(evaluate(std::string(inside), spec));
  });
}

bool uniform_list(const json& list, int64_t expected) {
  if (!list.is_array()) return false;
  return std::all_of(list.begin(), list.end(), [expected](const json& entry) {
    return entry.is_number_integer() && entry.get<int64_t>() == expected;
  });
}

// Whether `rule` refuses; `value` receives the config value the message shows.
bool refuses(const ConfigRefusal& rule, const ModelSpec& spec, const json*& value) {
  const json* found = find_key(spec.text_config(), rule.key);
  const bool present = found != nullptr && !found->is_null();
  value = found;
  switch (rule.condition) {
    case RefuseCondition::kSet:
      return present;
    case RefuseCondition::kTruthy:
      return present && truthy(*found);
    case RefuseCondition::kNotObject:
      return present && !found->is_object();
    case RefuseCondition::kNotOneOf: {
      if (found == nullptr) value = rule.fallback ? &*rule.fallback : nullptr;
      if (value == nullptr || (value->is_null() && !rule.fallback)) return false;
      return std::find(rule.values.begin(), rule.values.end(), *value) == rule.values.end();
    }
    case RefuseCondition::kNotEachEqualTo:
      return present && !uniform_list(*found, spec.dim(*rule.dim));
    case RefuseCondition::kFlagWithDim:
      return spec.flag(*rule.flag) && spec.dim(*rule.dim) > 0;
    case RefuseCondition::kDimsDiffer:
      return evaluate(rule.dims[0], spec) != evaluate(rule.dims[1], spec);
  }
  return false;
}

template <typename Enum>
Enum required_name(const json& item, const char* field) {
  const std::string spelling = item.at(field).get<std::string>();
  const std::optional<Enum> parsed = from_name<Enum>(spelling);
  if (!parsed) throw std::invalid_argument(fmt::format("unknown {} '{}'", field, spelling));
  return *parsed;
}

}  // namespace

std::vector<ConfigRefusal> parse_config_refusals(
    const json& list, const std::function<bool(std::string_view)>& is_dim,
    const std::function<bool(Flag)>& declares) {
  std::vector<ConfigRefusal> rules;
  if (list.is_null()) return rules;
  if (!list.is_array()) throw std::invalid_argument("forward_refusals must be a list");
  for (const json& item : list) {
    ConfigRefusal rule;
    rule.key = item.at("key").get<std::string>();
    const auto check_expression = [&is_dim, &rule](std::string_view expression) {
      try {
        check_dim_expression(expression, is_dim);
      } catch (const std::invalid_argument& error) {
        throw std::invalid_argument(
            fmt::format("forward refusal of '{}': {}", rule.key, error.what()));
      }
    };
    const std::string condition = item.at("refuse").get<std::string>();
    const auto it = condition_names().find(condition);
    if (it == condition_names().end())
      throw std::invalid_argument(
          fmt::format("forward refusal of '{}': unknown condition '{}'", rule.key, condition));
    rule.condition = it->second;
    rule.why = item.at("why").get<std::string>();
    if (rule.key.empty()) throw std::invalid_argument("forward refusal without a key");
    switch (rule.condition) {
      case RefuseCondition::kNotOneOf:
        rule.values = item.at("values").get<std::vector<json>>();
        if (item.contains("default")) rule.fallback = item["default"];
        break;
      case RefuseCondition::kNotEachEqualTo:
        rule.dim = required_name<Dim>(item, "dim");
        break;
      case RefuseCondition::kFlagWithDim:
        rule.dim = required_name<Dim>(item, "dim");
        rule.flag = required_name<Flag>(item, "flag");
        if (!declares(*rule.flag))
          throw std::invalid_argument(fmt::format(
              "forward refusal of '{}' uses undeclared flag '{}'", rule.key, name(*rule.flag)));
        break;
      case RefuseCondition::kDimsDiffer:
        rule.dims = item.at("dims").get<std::vector<std::string>>();
        if (rule.dims.size() != 2)
          throw std::invalid_argument(
              fmt::format("forward refusal of '{}': 'dims' must hold two expressions", rule.key));
        for (const std::string& expression : rule.dims) check_expression(expression);
        break;
      default:
        break;
    }
    if (rule.dim && !is_dim(name(*rule.dim)))
      throw std::invalid_argument(fmt::format("forward refusal of '{}' uses undeclared size '{}'",
                                              rule.key, name(*rule.dim)));
    substitute_placeholders(rule.why, [&check_expression](std::string_view inside) {
      if (inside != "value") check_expression(inside);
      return std::string();
    });
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::optional<std::string> first_config_refusal(const std::vector<ConfigRefusal>& rules,
                                                const ModelSpec& spec) {
  for (const ConfigRefusal& rule : rules) {
    const json* value = nullptr;
    if (refuses(rule, spec, value))
      return fmt::format("'{}' {}", rule.key, expand(rule.why, value, spec));
  }
  return std::nullopt;
}

}  // namespace moeslice
