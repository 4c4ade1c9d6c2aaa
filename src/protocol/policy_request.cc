#include "protocol/policy_request.h"

#include <algorithm>

namespace greylight::protocol {

void PolicyRequest::Add(std::string_view name, std::string_view value) {
  if (fields_.empty()) {
    // A Postfix 3.7 request: ~30 attributes, ~600 bytes. One allocation each, not a
    // growth sequence.
    fields_.reserve(kTypicalAttributes);
    storage_.reserve(kTypicalBytes);
  }
  Field field;
  field.name_offset = static_cast<uint32_t>(storage_.size());
  field.name_length = static_cast<uint32_t>(name.size());
  storage_.append(name);
  field.value_offset = static_cast<uint32_t>(storage_.size());
  field.value_length = static_cast<uint32_t>(value.size());
  storage_.append(value);
  fields_.push_back(field);
}

void PolicyRequest::AddLine(std::string_view line, size_t equals, size_t max_field) {
  if (fields_.empty()) {
    fields_.reserve(kTypicalAttributes);
    storage_.reserve(kTypicalBytes);
  }
  const auto start = static_cast<uint32_t>(storage_.size());
  storage_.append(line);
  Field field;
  field.name_offset = start;
  field.name_length = static_cast<uint32_t>(std::min(equals, max_field));
  field.value_offset = start + static_cast<uint32_t>(equals) + 1;
  field.value_length = static_cast<uint32_t>(std::min(line.size() - equals - 1, max_field));
  fields_.push_back(field);
}

std::optional<std::string_view> PolicyRequest::Get(std::string_view name) const {
  for (auto it = fields_.rbegin(); it != fields_.rend(); ++it) {
    if (it->name_length == name.size() && Slice(it->name_offset, it->name_length) == name) {
      return Slice(it->value_offset, it->value_length);
    }
  }
  return std::nullopt;
}

void AppendReply(std::string& out, std::string_view action) {
  out.append("action=").append(action).append("\n\n");
}

std::string FormatReply(std::string_view action) {
  std::string reply;
  reply.reserve(action.size() + 9);
  AppendReply(reply, action);
  return reply;
}

}  // namespace greylight::protocol
