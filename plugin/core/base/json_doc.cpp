#include "base/json_doc.hpp"

#include <json-glib/json-glib.h>

#include <cerrno>

namespace rbdclone {

void JsonDoc::Unref::operator()(JsonParser *p) const { g_object_unref(p); }

Error JsonDoc::error(const std::string &why) const
{
    return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, what_ + why);
}

Result<JsonDoc> JsonDoc::parse(const std::string &text, std::string what)
{
    std::unique_ptr<JsonParser, Unref> parser(json_parser_new());
    g_autoptr(GError) err = nullptr;
    if (!json_parser_load_from_data(parser.get(), text.data(), static_cast<gssize>(text.size()), &err))
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           what + " is not JSON: " + (err && err->message ? err->message : "unreadable"));
    JsonNode *root = json_parser_get_root(parser.get());
    if (!root) // json-glib takes an empty (or all-blank) text as a document without root
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, what + " is not JSON: it is empty");
    if (!JSON_NODE_HOLDS_OBJECT(root))
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, what + " is not a JSON object");
    JsonObject *obj = json_node_get_object(root);
    return JsonDoc(std::move(parser), obj, std::move(what));
}

Result<std::optional<int64_t>> JsonDoc::top_int_if_present(const char *key) const
{
    JsonNode *n = json_object_get_member(root_, key);
    if (!n)
        return std::optional<int64_t>();
    // The type is checked first: json-glib's getters complain on stderr
    // (g_critical) when asked for a type the node does not hold.
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return error(std::string(": \"") + key + "\" is not a whole number");
    return std::optional<int64_t>(json_node_get_int(n));
}

Result<std::optional<std::string>> JsonDoc::top_string_if_present(const char *key) const
{
    JsonNode *n = json_object_get_member(root_, key);
    if (!n)
        return std::optional<std::string>();
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return error(std::string(": \"") + key + "\" is not a string");
    return std::optional<std::string>(json_node_get_string(n));
}

Result<int64_t> JsonDoc::top_int(const char *key) const
{
    auto v = top_int_if_present(key);
    if (!v)
        return v.error();
    if (!*v)
        return error(std::string(" has no top-level \"") + key + "\"");
    return **v;
}

} // namespace rbdclone
