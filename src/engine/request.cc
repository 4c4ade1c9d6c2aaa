#include "engine/request.h"

#include <charconv>

namespace greylight::engine {

namespace attr = protocol::attr;

ReadResult ReadRequest(const protocol::PolicyRequest& wire, UnixTime real_now,
                       bool allow_test_time) {
  // One pass over the ~30 attributes Postfix sends; later values overwrite earlier ones.
  std::optional<std::string_view> client_address, client_name, sender, recipient, helo_name,
      queue_id, instance, etrn_domain, test_time;
  // Dispatched on the name's length first: one comparison per attribute instead of nine.
  wire.ForEach([&](std::string_view name, std::string_view value) {
    switch (name.size()) {
      case attr::kSender.size():
        if (name == attr::kSender) sender = value;
        break;
      case attr::kQueueId.size():  // == attr::kInstance.size()
        if (name == attr::kQueueId) {
          queue_id = value;
        } else if (name == attr::kInstance) {
          instance = value;
        }
        break;
      case attr::kRecipient.size():  // == attr::kHeloName.size()
        if (name == attr::kRecipient) {
          recipient = value;
        } else if (name == attr::kHeloName) {
          helo_name = value;
        }
        break;
      case attr::kClientName.size():  // == attr::kEtrnDomain.size()
        if (name == attr::kClientName) {
          client_name = value;
        } else if (name == attr::kEtrnDomain) {
          etrn_domain = value;
        }
        break;
      case attr::kClientAddress.size():
        if (name == attr::kClientAddress) client_address = value;
        break;
      case attr::kPolicyTestTime.size():
        if (name == attr::kPolicyTestTime) test_time = value;
        break;
      default:
        break;
    }
  });
  static_assert(attr::kQueueId.size() == attr::kInstance.size() &&
                attr::kRecipient.size() == attr::kHeloName.size() &&
                attr::kClientName.size() == attr::kEtrnDomain.size());

  ReadResult result;
  UnixTime now = real_now;
  if (allow_test_time && test_time) {
    long long seconds = 0;
    auto [end, ec] =
        std::from_chars(test_time->data(), test_time->data() + test_time->size(), seconds);
    if (ec != std::errc() || end != test_time->data() + test_time->size()) {
      result.unreadable = {policy::Reason::kBadTestTime, *test_time};
      return result;
    }
    now = FromUnixSeconds(seconds);
  }
  // postgrey's order of checks.
  for (auto [value, name] :
       {std::pair{client_address, attr::kClientAddress}, std::pair{client_name, attr::kClientName},
        std::pair{recipient, attr::kRecipient}, std::pair{sender, attr::kSender}}) {
    if (!value) {
      result.unreadable = {policy::Reason::kMissingAttribute, name};
      return result;
    }
  }
  std::optional<policy::IpAddress> client = policy::IpAddress::Parse(*client_address);
  if (!client) {
    result.unreadable = {policy::Reason::kBadClientAddress, *client_address};
    return result;
  }
  result.request = Request{*client,  *client_address, *client_name,
                           *sender,  *recipient,      helo_name.value_or(std::string_view()),
                           queue_id, instance,        etrn_domain.has_value(),
                           now,      real_now};
  return result;
}

}  // namespace greylight::engine
