// `greylight pass`.
#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <ostream>

#include "policy/greylist_state.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "tools/command.h"
#include "tools/output_format.h"
#include "tools/record_filter.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kPassOptions[] = {
    {"--key", Arity::kValue, "KEY", "", "the stored key of the triplet", "greylight"},
    {"--client-address", Arity::kValue, "ADDRESS", "",
     "with --sender and --recipient: the triplet of this request", "greylight"},
    kClientNameOption,
    {"--sender", Arity::kValue, "ADDRESS", "", "see --client-address (<> is the null sender)",
     "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "see --client-address", "greylight"},
    kAtOption,
};

int RunPass(const ParsedOptions& o, Context& c) {
  auto key = TripletKeyOption(o, c);
  if (!key.ok()) return c.Fail(kExitConfig, key.status().message());
  auto now_or = TimeOption(o, c);
  if (!now_or.ok()) return c.Fail(kExitConfig, now_or.status().message());
  const UnixTime now = *now_or;
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());
  auto value = (*store)->Get(store::Table::kTriplets, *key);
  if (!value.ok()) return c.StoreFailure(value.status());
  const std::string shown = Printable(*key);
  if (!*value) return c.Fail(kExitAbsent, fmt::format("no triplet {}{}", shown, SpfKeyHint(o, c)));
  std::optional<policy::TripletRecord> record = policy::DecodeTriplet(**value);
  if (!record) {
    return c.Fail(kExitAbsent, fmt::format("triplet {} has a malformed value '{}' (greylightd "
                                           "treats it as absent)",
                                           shown, Printable(**value)));
  }
  const policy::GreylistTiming& timing = c.config.timing;
  if (!policy::Live(record, now, timing)) {
    return c.Fail(kExitAbsent, fmt::format("triplet {} was last seen more than max-age ago "
                                           "(greylightd treats it as absent)",
                                           shown));
  }
  if (StateOf(*record, timing) == TripletState::kPassed) {
    return c.Fail(kExitAbsent,
                  fmt::format("triplet {} has already passed (first seen {}, last seen {})", shown,
                              FormatTime(record->first), FormatTime(record->last)));
  }
  // first = last = now - delay: the next request finds the delay over and the triplet not
  // yet successful, so it is the first accepted delivery (header, AWL count), exactly as
  // if the sender had retried on time.
  const UnixTime first = now - timing.delay;
  if (Status put =
          (*store)->Put(store::Table::kTriplets, *key, policy::EncodeTriplet({first, first}));
      !put.ok()) {
    return c.StoreFailure(put);
  }
  c.env.out << fmt::format(
      "passed triplet {}: first and last seen set to {} (now - delay {}); its next request "
      "within {} is its first accepted delivery\n",
      shown, FormatTime(first), FormatDuration(timing.delay),
      FormatDuration(timing.retry_window - timing.delay));
  return kExitOk;
}

}  // namespace

constexpr Command kPassCommand = {
    "pass",
    "(--key=KEY | --client-address=A [--client-name=N] --sender=S --recipient=R) [options]",
    "let one pending triplet through now",
    "Moves the first sighting of a pending triplet back by --delay (first = last = now -\n"
    "delay), so the next request for it is its first accepted delivery: it passes with the\n"
    "X-Greylist header and counts toward the client auto-whitelist (unless the client is\n"
    "on the greytrap list, which greylists it whatever its triplets say). Exits 1 if the\n"
    "triplet is absent or has already passed.\n",
    kPassOptions,
    true,
    RunPass};

}  // namespace greylight::tools
