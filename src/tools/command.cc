#include "tools/command.h"

#include <fmt/format.h>

#include <ostream>
#include <utility>

#include "tools/tool_keys.h"

namespace greylight::tools {
namespace {

// The client_name Postfix sends for a client whose name it could not verify.
constexpr std::string_view kUnverifiedClientName = "unknown";

}  // namespace

int Context::Fail(int code, std::string_view message) {
  env.err << "greylight " << command.name << ": " << message << "\n";
  return code;
}

void Context::Warn(std::string_view message) {
  env.err << "greylight " << command.name << ": warning: " << message << "\n";
}

int Context::StoreFailure(const Status& status) {
  return Fail(status.code() == Status::Code::kInvalidArgument ? kExitConfig : kExitUnavailable,
              status.message());
}

Result<const reputation::Psl*> Context::PublicSuffixList() {
  if (!psl_loaded_) {
    auto loaded = cli::LoadPsl(config);
    if (!loaded.ok()) return loaded.status();
    psl_ = std::move(loaded.value());
    psl_loaded_ = true;
  }
  return psl_.get();
}

Result<engine::KeyScheme> Context::Scheme() {
  auto loaded = PublicSuffixList();
  if (!loaded.ok()) return loaded.status();
  return KeySchemeFor(config, *loaded);
}

Result<engine::RequestKeys> Context::Keys(const policy::IpAddress& client,
                                          std::string_view client_name, std::string_view sender,
                                          std::string_view recipient) {
  auto scheme = Scheme();
  if (!scheme.ok()) return scheme.status();
  return engine::BuildRequestKeys(client, client_name, sender, recipient, *scheme);
}

Result<UnixTime> TimeOption(const cli::ParsedOptions& o, Context& c) {
  if (!o.Has("at")) return c.env.clock.Now();
  auto seconds = o.Integer("at");
  if (!seconds.ok()) return seconds.status();
  return FromUnixSeconds(*seconds);
}

std::string SenderOption(const cli::ParsedOptions& o) {
  std::string_view sender = o.Last("sender");
  return sender == "<>" ? std::string() : std::string(sender);
}

Result<policy::IpAddress> AddressOption(const cli::ParsedOptions& o, std::string_view name) {
  std::string_view text = o.Last(name);
  std::optional<policy::IpAddress> address = policy::IpAddress::Parse(text);
  if (!address) {
    return Status::InvalidArgument(fmt::format("--{}: '{}' is not an IP address", name, text));
  }
  return *address;
}

std::string_view RecordNoun(store::Table table) {
  switch (table) {
    case store::Table::kTriplets:
      return "triplet";
    case store::Table::kClients:
      return "client record";
    case store::Table::kTraps:
      return "trap record";
    case store::Table::kReplies:
      return "reply record";
  }
  return "record";
}

std::string_view ClientNameOption(const cli::ParsedOptions& o) {
  return o.Last("client-name", kUnverifiedClientName);
}

Result<std::string> TripletKeyOption(const cli::ParsedOptions& o, Context& c) {
  const bool by_key = o.Has("key");
  const bool by_request =
      o.Has("client-address") || o.Has("client-name") || o.Has("sender") || o.Has("recipient");
  if (by_key == by_request) {
    return Status::InvalidArgument(
        "give either --key or all of --client-address, --sender and --recipient");
  }
  if (by_key) {
    if (o.Last("key").empty()) return Status::InvalidArgument("--key: empty key");
    return std::string(o.Last("key"));
  }
  if (!o.Has("client-address") || !o.Has("sender") || !o.Has("recipient")) {
    return Status::InvalidArgument("--client-address, --sender and --recipient go together");
  }
  auto address = AddressOption(o, "client-address");
  if (!address.ok()) return address.status();
  auto keys = c.Keys(*address, ClientNameOption(o), SenderOption(o), o.Last("recipient"));
  if (!keys.ok()) return keys.status();
  return std::move(keys->triplet);
}

std::string SpfKeyHint(const cli::ParsedOptions& o, const Context& c) {
  if (!c.config.engine.spf_keys || o.Has("key") || o.Has("trap")) return "";  // traps: never
  return " (with --spf-keys, a client that passed SPF is keyed spf:DOMAIN instead: `greylight "
         "explain` shows the key, which --key takes)";
}

}  // namespace greylight::tools
