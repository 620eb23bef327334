#include "json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "neurocore/runtime.h"

namespace neurocore::detail {

class JsonParser {
 public:
  JsonParser(const char* p, size_t n, const std::string& what) : p_(p), end_(p + n), what_(what) {}

  Json parse_document() {
    Json v = value(0);
    skip_ws();
    if (p_ != end_) fail("trailing data after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;
  const char* p_;
  const char* end_;
  const std::string& what_;

  [[noreturn]] void fail(const std::string& msg) {
    throw Error("[load] malformed JSON in " + what_ + ": " + msg);
  }
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool literal(const char* s) {
    const size_t n = std::strlen(s);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, s, n) != 0) return false;
    p_ += n;
    return true;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64 levels");
    skip_ws();
    if (p_ == end_) fail("unexpected end of input");
    Json v;
    const char c = *p_;
    if (c == '{') {
      v.type_ = Json::Type::Object;
      ++p_;
      skip_ws();
      if (p_ != end_ && *p_ == '}') { ++p_; return v; }
      for (;;) {
        skip_ws();
        if (p_ == end_ || *p_ != '"') fail("expected a string key");
        std::string key = string();
        skip_ws();
        if (p_ == end_ || *p_ != ':') fail("expected ':' after a key");
        ++p_;
        Json member = value(depth + 1);
        if (!v.object_.emplace(std::move(key), std::move(member)).second) fail("duplicate key");
        skip_ws();
        if (p_ != end_ && *p_ == ',') { ++p_; continue; }
        if (p_ != end_ && *p_ == '}') { ++p_; return v; }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.type_ = Json::Type::Array;
      ++p_;
      skip_ws();
      if (p_ != end_ && *p_ == ']') { ++p_; return v; }
      for (;;) {
        v.array_.push_back(value(depth + 1));
        skip_ws();
        if (p_ != end_ && *p_ == ',') { ++p_; continue; }
        if (p_ != end_ && *p_ == ']') { ++p_; return v; }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.type_ = Json::Type::String;
      v.string_ = string();
      return v;
    }
    if (literal("true")) { v.type_ = Json::Type::Bool; v.bool_ = true; return v; }
    if (literal("false")) { v.type_ = Json::Type::Bool; return v; }
    if (literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail(std::string("unexpected character '") + c + "'");
  }

  Json number() {
    const char* start = p_;
    bool integral = true;
    if (*p_ == '-') ++p_;
    auto digits = [&] {
      const char* s = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == s) fail("malformed number");
    };
    digits();
    if (p_ != end_ && *p_ == '.') { integral = false; ++p_; digits(); }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      digits();
    }
    const std::string text(start, p_);
    if (text.size() > 64) fail("number too long");
    Json v;
    v.type_ = Json::Type::Number;
    v.number_ = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v.number_)) fail("number out of range");
    if (integral) {
      errno = 0;
      char* e = nullptr;
      const long long i = std::strtoll(text.c_str(), &e, 10);
      if (errno == 0) { v.integral_ = true; v.int_ = i; }
    }
    return v;
  }

  unsigned hex4() {
    if (end_ - p_ < 4) fail("truncated \\u escape");
    unsigned u = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = *p_++;
      u <<= 4;
      if (h >= '0' && h <= '9') u |= h - '0';
      else if (h >= 'a' && h <= 'f') u |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') u |= h - 'A' + 10;
      else fail("invalid \\u escape");
    }
    return u;
  }

  std::string string() {
    ++p_;  // opening quote
    std::string out;
    for (;;) {
      if (p_ == end_) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return out;
      if (c < 0x20) fail("control character in a string");
      if (c != '\\') { out.push_back(static_cast<char>(c)); continue; }
      if (p_ == end_) fail("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') fail("unpaired surrogate");
            p_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("unpaired surrogate");
          }
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: fail("invalid escape");
      }
    }
  }
};

Json Json::parse(const char* data, size_t size, const std::string& what) {
  return JsonParser(data, size, what).parse_document();
}

static const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}

[[noreturn]] static void type_error(const std::string& what, const char* expected, Json::Type got) {
  throw Error("[load] " + what + " must be " + expected + ", got " + type_name(got));
}

bool Json::as_bool(const std::string& what) const {
  if (type_ != Type::Bool) type_error(what, "a boolean", type_);
  return bool_;
}
double Json::as_double(const std::string& what) const {
  if (type_ != Type::Number) type_error(what, "a number", type_);
  return number_;
}
int64_t Json::as_int(const std::string& what) const {
  if (type_ != Type::Number || !integral_) type_error(what, "an integer", type_);
  return int_;
}
const std::string& Json::as_string(const std::string& what) const {
  if (type_ != Type::String) type_error(what, "a string", type_);
  return string_;
}
const std::vector<Json>& Json::as_array(const std::string& what) const {
  if (type_ != Type::Array) type_error(what, "an array", type_);
  return array_;
}
const std::map<std::string, Json>& Json::as_object(const std::string& what) const {
  if (type_ != Type::Object) type_error(what, "an object", type_);
  return object_;
}
const Json& Json::at(const std::string& key, const std::string& what) const {
  const auto& o = as_object(what);
  auto it = o.find(key);
  if (it == o.end()) throw Error("[load] " + what + " has no '" + key + "'");
  return it->second;
}
const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &it->second;
}
std::vector<int64_t> Json::as_int_list(const std::string& what) const {
  std::vector<int64_t> out;
  for (const Json& v : as_array(what)) out.push_back(v.as_int(what + " element"));
  return out;
}

}  // namespace neurocore::detail
