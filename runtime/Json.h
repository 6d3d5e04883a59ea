//===- Json.h - a small JSON reader/writer with source positions ----------===//
//
// JSON for the project's own files (model descriptions, manifests, safetensors
// headers). Every value remembers the line and column it starts at, so that
// validation errors can point into the user's file; object members keep their
// order, and duplicate keys are an error. No dependency beyond the standard
// library and Abseil, so the runtime can use it without the compiler.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_JSON_H
#define SYNTHC_RUNTIME_JSON_H

#include "absl/status/statusor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace synth::json {

/// One JSON value. Numbers keep their double value and, when the text was an
/// integer that fits, its exact int64 value.
class Value {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool value);
  static Value number(double value);
  static Value integer(int64_t value);
  static Value string(std::string value);
  static Value array(std::vector<Value> items = {});
  static Value object(std::vector<std::pair<std::string, Value>> members = {});

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  /// A number written without fraction or exponent that fits in int64.
  bool isInteger() const { return kind_ == Kind::Number && isInteger_; }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }

  bool asBool() const { return bool_; }
  double asDouble() const { return number_; }
  int64_t asInt() const { return integer_; }
  const std::string &asString() const { return string_; }
  const std::vector<Value> &items() const { return items_; }
  std::vector<Value> &items() { return items_; }
  const std::vector<std::pair<std::string, Value>> &members() const {
    return members_;
  }

  /// The member named `key`, or nullptr (objects only).
  const Value *find(const std::string &key) const;
  /// Appends a member (objects only); does not check for duplicates.
  void set(std::string key, Value value);
  void push(Value value) { items_.push_back(std::move(value)); }

  /// 1-based position of the value's first character in the parsed text
  /// (0 for values built in code).
  int line() const { return line_; }
  int column() const { return column_; }
  void setPosition(int line, int column) {
    line_ = line;
    column_ = column;
  }

  /// "object", "array", "string", "number", "true/false" or "null".
  static const char *kindName(Kind kind);

private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool isInteger_ = false;
  double number_ = 0.0;
  int64_t integer_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
  int line_ = 0;
  int column_ = 0;
};

/// Parses `text` as one JSON document. Errors read
/// "<source>:<line>:<column>: <what is wrong>".
absl::StatusOr<Value> parse(const std::string &text,
                            const std::string &source = "<input>");

/// Writes `value` as JSON: compact, or indented by two spaces.
std::string serialize(const Value &value, bool pretty = false);

/// Escapes and quotes `text` as a JSON string.
std::string quote(const std::string &text);

} // namespace synth::json

#endif // SYNTHC_RUNTIME_JSON_H
