#pragma once
// A small strict JSON parser for the model file's header and graph (no dependency). Inputs come
// from untrusted files: nesting depth and sizes are bounded, duplicate keys, trailing data and
// invalid escapes are errors, and every accessor checks the type it expects.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace neurocore::detail {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  static Json parse(const char* data, size_t size, const std::string& what);

  Type type() const { return type_; }
  bool is(Type t) const { return type_ == t; }
  // Typed accessors; `what` names the field in the error message.
  bool as_bool(const std::string& what) const;
  double as_double(const std::string& what) const;
  int64_t as_int(const std::string& what) const;  // integral numbers only
  const std::string& as_string(const std::string& what) const;
  const std::vector<Json>& as_array(const std::string& what) const;
  const std::map<std::string, Json>& as_object(const std::string& what) const;
  // Object member: required (throws when missing) or optional (nullptr).
  const Json& at(const std::string& key, const std::string& what) const;
  const Json* find(const std::string& key) const;
  std::vector<int64_t> as_int_list(const std::string& what) const;

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  bool integral_ = false;
  int64_t int_ = 0;
  std::string string_;
  std::vector<Json> array_;
  std::map<std::string, Json> object_;
};

}  // namespace neurocore::detail
