//===- Json.cpp - JSON reader/writer with source positions ----------------===//
//
// A recursive-descent parser over RFC 8259 JSON that tracks line and column,
// rejects duplicate keys, trailing garbage and nesting deeper than 256 levels
// (so hostile input cannot exhaust the stack), and a writer.
//
//===----------------------------------------------------------------------===//

#include "runtime/Json.h"

#include "absl/strings/str_cat.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace synth::json {

//===----------------------------------------------------------------------===//
// Value
//===----------------------------------------------------------------------===//

Value Value::boolean(bool value) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = value;
  return v;
}

Value Value::number(double value) {
  Value v;
  v.kind_ = Kind::Number;
  v.number_ = value;
  return v;
}

Value Value::integer(int64_t value) {
  Value v;
  v.kind_ = Kind::Number;
  v.number_ = static_cast<double>(value);
  v.integer_ = value;
  v.isInteger_ = true;
  return v;
}

Value Value::string(std::string value) {
  Value v;
  v.kind_ = Kind::String;
  v.string_ = std::move(value);
  return v;
}

Value Value::array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::Array;
  v.items_ = std::move(items);
  return v;
}

Value Value::object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.kind_ = Kind::Object;
  v.members_ = std::move(members);
  return v;
}

const Value *Value::find(const std::string &key) const {
  for (const auto &[name, value] : members_) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

void Value::set(std::string key, Value value) {
  members_.emplace_back(std::move(key), std::move(value));
}

const char *Value::kindName(Kind kind) {
  switch (kind) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "true/false";
  case Kind::Number:
    return "number";
  case Kind::String:
    return "string";
  case Kind::Array:
    return "array";
  case Kind::Object:
    return "object";
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

namespace {

constexpr int kMaxDepth = 256;

class Parser {
public:
  Parser(const std::string &text, const std::string &source)
      : text_(text), source_(source) {}

  absl::StatusOr<Value> parseDocument() {
    skipSpace();
    Value value;
    if (!parseValue(value, 0)) {
      return error_;
    }
    skipSpace();
    if (pos_ != text_.size()) {
      fail("unexpected text after the JSON document");
      return error_;
    }
    return value;
  }

private:
  bool fail(const std::string &message) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat(source_, ":", line_, ":", column_, ": ", message));
    return false;
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r')) {
      advance();
    }
  }

  /// Describes the character at the cursor for error messages.
  std::string here() const {
    if (atEnd()) {
      return "end of input";
    }
    unsigned char c = static_cast<unsigned char>(peek());
    if (c < 0x20 || c >= 0x7f) {
      char buffer[16];
      std::snprintf(buffer, sizeof(buffer), "byte 0x%02x", c);
      return buffer;
    }
    return absl::StrCat("'", std::string(1, peek()), "'");
  }

  bool expectLiteral(const char *literal) {
    for (const char *p = literal; *p; ++p) {
      if (peek() != *p) {
        return fail(absl::StrCat("invalid literal (expected '", literal, "')"));
      }
      advance();
    }
    return true;
  }

  bool parseValue(Value &out, int depth) {
    if (depth > kMaxDepth) {
      return fail("JSON nested deeper than 256 levels");
    }
    int line = line_, column = column_;
    bool ok = false;
    switch (peek()) {
    case '{':
      ok = parseObject(out, depth);
      break;
    case '[':
      ok = parseArray(out, depth);
      break;
    case '"': {
      std::string text;
      ok = parseString(text);
      out = Value::string(std::move(text));
      break;
    }
    case 't':
      ok = expectLiteral("true");
      out = Value::boolean(true);
      break;
    case 'f':
      ok = expectLiteral("false");
      out = Value::boolean(false);
      break;
    case 'n':
      ok = expectLiteral("null");
      out = Value::null();
      break;
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
        ok = parseNumber(out);
      } else {
        return fail(absl::StrCat("expected a JSON value, got ", here()));
      }
    }
    if (ok) {
      out.setPosition(line, column);
    }
    return ok;
  }

  bool parseObject(Value &out, int depth) {
    advance(); // '{'
    out = Value::object();
    std::vector<std::string> keys;
    skipSpace();
    if (peek() == '}') {
      advance();
      return true;
    }
    while (true) {
      skipSpace();
      if (peek() != '"') {
        return fail(absl::StrCat("expected a quoted object key, got ", here()));
      }
      int keyLine = line_, keyColumn = column_;
      std::string key;
      if (!parseString(key)) {
        return false;
      }
      if (out.find(key)) {
        line_ = keyLine;
        column_ = keyColumn;
        return fail(absl::StrCat("duplicate key ", quote(key)));
      }
      skipSpace();
      if (peek() != ':') {
        return fail(absl::StrCat("expected ':' after key ", quote(key),
                                 ", got ", here()));
      }
      advance();
      skipSpace();
      Value member;
      if (!parseValue(member, depth + 1)) {
        return false;
      }
      out.set(std::move(key), std::move(member));
      skipSpace();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == '}') {
        advance();
        return true;
      }
      return fail(absl::StrCat("expected ',' or '}' in object, got ", here()));
    }
  }

  bool parseArray(Value &out, int depth) {
    advance(); // '['
    out = Value::array();
    skipSpace();
    if (peek() == ']') {
      advance();
      return true;
    }
    while (true) {
      skipSpace();
      Value item;
      if (!parseValue(item, depth + 1)) {
        return false;
      }
      out.push(std::move(item));
      skipSpace();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == ']') {
        advance();
        return true;
      }
      return fail(absl::StrCat("expected ',' or ']' in array, got ", here()));
    }
  }

  static void appendUtf8(std::string &out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  bool parseHex4(uint32_t &code) {
    code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return fail("expected 4 hex digits after \\u");
      }
      code = code * 16 + digit;
      advance();
    }
    return true;
  }

  bool parseString(std::string &out) {
    advance(); // opening quote
    while (true) {
      if (atEnd()) {
        return fail("unterminated string");
      }
      char c = peek();
      if (c == '"') {
        advance();
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return fail("control character in string (escape it)");
      }
      if (c != '\\') {
        out += c;
        advance();
        continue;
      }
      advance();
      char escape = peek();
      if (atEnd()) {
        return fail("unterminated string");
      }
      advance();
      switch (escape) {
      case '"':
      case '\\':
      case '/':
        out += escape;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t code;
        if (!parseHex4(code)) {
          return false;
        }
        // A high surrogate must be followed by a low one.
        if (code >= 0xD800 && code <= 0xDBFF) {
          if (peek() != '\\') {
            return fail("unpaired UTF-16 surrogate in \\u escape");
          }
          advance();
          if (peek() != 'u') {
            return fail("unpaired UTF-16 surrogate in \\u escape");
          }
          advance();
          uint32_t low;
          if (!parseHex4(low)) {
            return false;
          }
          if (low < 0xDC00 || low > 0xDFFF) {
            return fail("unpaired UTF-16 surrogate in \\u escape");
          }
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
          return fail("unpaired UTF-16 surrogate in \\u escape");
        }
        appendUtf8(out, code);
        break;
      }
      default:
        return fail(absl::StrCat("invalid escape '\\", std::string(1, escape),
                                 "' in string"));
      }
    }
  }

  bool parseNumber(Value &out) {
    size_t start = pos_;
    bool integral = true;
    if (peek() == '-') {
      advance();
    }
    if (peek() == '0') {
      advance();
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') {
        advance();
      }
    } else {
      return fail("invalid number: expected a digit");
    }
    if (peek() == '.') {
      integral = false;
      advance();
      if (!(peek() >= '0' && peek() <= '9')) {
        return fail("invalid number: expected a digit after '.'");
      }
      while (peek() >= '0' && peek() <= '9') {
        advance();
      }
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      advance();
      if (peek() == '+' || peek() == '-') {
        advance();
      }
      if (!(peek() >= '0' && peek() <= '9')) {
        return fail("invalid number: expected a digit in the exponent");
      }
      while (peek() >= '0' && peek() <= '9') {
        advance();
      }
    }
    std::string literal = text_.substr(start, pos_ - start);
    if (integral) {
      errno = 0;
      char *end = nullptr;
      long long value = std::strtoll(literal.c_str(), &end, 10);
      if (errno == 0 && end && *end == '\0') {
        out = Value::integer(value);
        return true;
      }
    }
    double value = std::strtod(literal.c_str(), nullptr);
    if (!std::isfinite(value)) {
      return fail(absl::StrCat("number out of range: ", literal));
    }
    out = Value::number(value);
    return true;
  }

  const std::string &text_;
  const std::string &source_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
  absl::Status error_;
};

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

void write(const Value &value, bool pretty, int indent, std::string &out) {
  auto newline = [&](int level) {
    if (pretty) {
      out += '\n';
      out.append(static_cast<size_t>(level) * 2, ' ');
    }
  };
  switch (value.kind()) {
  case Value::Kind::Null:
    out += "null";
    return;
  case Value::Kind::Bool:
    out += value.asBool() ? "true" : "false";
    return;
  case Value::Kind::Number: {
    if (value.isInteger()) {
      out += std::to_string(value.asInt());
      return;
    }
    // %.17g round-trips every double.
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.17g", value.asDouble());
    out += buffer;
    return;
  }
  case Value::Kind::String:
    out += quote(value.asString());
    return;
  case Value::Kind::Array: {
    out += '[';
    bool first = true;
    for (const Value &item : value.items()) {
      if (!first) {
        out += ',';
      }
      first = false;
      newline(indent + 1);
      write(item, pretty, indent + 1, out);
    }
    if (!value.items().empty()) {
      newline(indent);
    }
    out += ']';
    return;
  }
  case Value::Kind::Object: {
    out += '{';
    bool first = true;
    for (const auto &[key, member] : value.members()) {
      if (!first) {
        out += ',';
      }
      first = false;
      newline(indent + 1);
      out += quote(key);
      out += pretty ? ": " : ":";
      write(member, pretty, indent + 1, out);
    }
    if (!value.members().empty()) {
      newline(indent);
    }
    out += '}';
    return;
  }
  }
}

} // namespace

absl::StatusOr<Value> parse(const std::string &text,
                            const std::string &source) {
  return Parser(text, source).parseDocument();
}

std::string serialize(const Value &value, bool pretty) {
  std::string out;
  write(value, pretty, 0, out);
  return out;
}

std::string quote(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
        out += buffer;
      } else {
        out += c;
      }
    }
  }
  out += '"';
  return out;
}

} // namespace synth::json
