#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greylight::protocol {

// One policy delegation request: the name=value attributes Postfix sent, in order.
// Owns its bytes in one buffer so a request costs two allocations, not two per attribute.
// Lookups are linear: Postfix sends ~30 attributes, which a scan handles faster than a map.
class PolicyRequest {
 public:
  // Appends an attribute. A later attribute of the same name wins on lookup.
  void Add(std::string_view name, std::string_view value);
  // Appends the attribute of a "name=value" line whose first '=' is at `equals`, keeping at
  // most `max_field` bytes of the name and of the value, with one copy of the line (the
  // parser's path). REQUIRES: 0 < equals < line.size() + 1.
  void AddLine(std::string_view line, size_t equals, size_t max_field);

  // The value of the last attribute called `name`, or nullopt if it was not sent.
  std::optional<std::string_view> Get(std::string_view name) const;
  // The value of `name`, or "" when absent.
  std::string_view GetOr(std::string_view name, std::string_view fallback = {}) const {
    return Get(name).value_or(fallback);
  }
  size_t attribute_count() const { return fields_.size(); }
  // Removes every attribute, keeping the buffers for the next request.
  void Clear() {
    storage_.clear();
    fields_.clear();
  }
  // The bytes its buffers hold, used or not.
  size_t buffer_bytes() const { return storage_.capacity() + fields_.capacity() * sizeof(Field); }
  // Calls `visit(name, value)` for every attribute, in the order received.
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (const Field& field : fields_) {
      visit(Slice(field.name_offset, field.name_length),
            Slice(field.value_offset, field.value_length));
    }
  }

 private:
  static constexpr size_t kTypicalAttributes = 32;
  static constexpr size_t kTypicalBytes = 768;
  struct Field {
    uint32_t name_offset, name_length, value_offset, value_length;
  };
  // Fields are built by Add and AddLine only, always inside storage_: no bounds check.
  std::string_view Slice(uint32_t offset, uint32_t length) const {
    return std::string_view(storage_.data() + offset, length);
  }
  std::string storage_;
  std::vector<Field> fields_;
};

// The attribute names greylight reads.
namespace attr {
inline constexpr std::string_view kRequest = "request";
inline constexpr std::string_view kClientAddress = "client_address";
inline constexpr std::string_view kClientName = "client_name";
inline constexpr std::string_view kSender = "sender";
inline constexpr std::string_view kHeloName = "helo_name";
inline constexpr std::string_view kRecipient = "recipient";
inline constexpr std::string_view kInstance = "instance";
inline constexpr std::string_view kQueueId = "queue_id";
inline constexpr std::string_view kEtrnDomain = "etrn_domain";
inline constexpr std::string_view kPolicyTestTime = "policy_test_time";
}  // namespace attr

// The only request type Postfix sends to a policy server.
inline constexpr std::string_view kAccessPolicyRequest = "smtpd_access_policy";

// Appends the reply for `action`, "action=<action>\n\n", to `out`.
// REQUIRES: action is non-empty and has no newline (an empty action means OK to Postfix).
void AppendReply(std::string& out, std::string_view action);
// The reply for `action` as a string (AppendReply).
std::string FormatReply(std::string_view action);

}  // namespace greylight::protocol
