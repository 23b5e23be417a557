// Reading the JSON that other programs print (qemu-img's --output=json,
// the monitors' "osd dump") with json-glib.  A document owns its parser; lookups read members of the
// root object only, never a search through the text, so a key of the same
// name inside a nested object (qemu 10's "children") is never mistaken
// for the document's own.  Every miss is an error value naming the
// document and the key; nothing here logs, throws or aborts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.hpp"

typedef struct _JsonParser JsonParser;
typedef struct _JsonObject JsonObject;

namespace rbdclone {

class JsonDoc {
  public:
    // Parses `text`, whose root must be an object.  `what` names the
    // document in errors, e.g. "qemu-img info's output for '/x.qcow2'".
    static Result<JsonDoc> parse(const std::string &text, std::string what);

    // The root object's member `key`, a whole number: an error when it is
    // missing or of another type.
    Result<int64_t> top_int(const char *key) const;
    // The same, std::nullopt when the member is missing.
    Result<std::optional<int64_t>> top_int_if_present(const char *key) const;

    // The root object's member `key`, a string; std::nullopt when missing.
    Result<std::optional<std::string>> top_string_if_present(const char *key) const;

    const std::string &what() const { return what_; }

  private:
    struct Unref {
        void operator()(JsonParser *p) const;
    };
    JsonDoc(std::unique_ptr<JsonParser, Unref> parser, JsonObject *root, std::string what)
        : parser_(std::move(parser)), root_(root), what_(std::move(what)) {}
    Error error(const std::string &why) const;

    std::unique_ptr<JsonParser, Unref> parser_;
    JsonObject *root_; // owned by parser_
    std::string what_;
};

} // namespace rbdclone
