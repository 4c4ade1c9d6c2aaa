#include "tools/explain.h"

#include <fmt/format.h>

#include <optional>
#include <type_traits>

#include "engine/decision_log.h"
#include "engine/decision_trace.h"
#include "engine/header_tracker.h"
#include "policy/greylist_state.h"
#include "policy/records.h"
#include "policy/reply_text.h"
#include "policy/triplet_key.h"
#include "tools/output_format.h"
#include "tools/read_only_store.h"
#include "tools/record_filter.h"

namespace greylight::tools {
namespace {

using policy::Reason;

std::string StoredText(const policy::TripletRecord& record) {
  return fmt::format("first seen {}, last seen {}", FormatTime(record.first),
                     FormatTime(record.last));
}
std::string StoredText(const policy::ClientRecord& record) {
  return fmt::format("count {}, last seen {}", record.count, FormatTime(record.last));
}
std::string StoredText(const policy::TrapRecord& record) {
  return fmt::format("trapped until {}, last hit {}", FormatTime(record.until),
                     FormatTime(record.last_hit));
}
std::string StoredText(const policy::ReplyRecord& record) {
  return fmt::format("{} outbound message{}, the last {}", record.count,
                     record.count == 1 ? "" : "s", FormatTime(record.last));
}

// A stored record as the decision saw it: decoded, then dropped if malformed or no longer
// live (last seen more than max-age ago; a trap that has ended). Appends what was found.
template <typename Record>
std::optional<Record> ShowLive(const std::optional<std::optional<std::string>>& read, UnixTime now,
                               const policy::GreylistTiming& timing, std::string& text) {
  if (!read || !*read) {
    text += "  stored: none\n";
    return std::nullopt;
  }
  const std::string& raw = **read;
  std::optional<Record> record = DecodeRecord<Record>(raw);
  if (!record) {
    text += fmt::format("  stored value '{}' is malformed: greylightd treats it as absent\n",
                        Printable(raw));
    return std::nullopt;
  }
  text += fmt::format("  stored: {}\n", StoredText(*record));
  if constexpr (std::is_same_v<Record, policy::TrapRecord>) {
    if (!policy::Live(record, now)) {
      text += fmt::format(
          "  the trap ended {}: greylightd treats it as absent (expired, awaiting removal)\n",
          FormatTime(record->until));
      return std::nullopt;
    }
  } else if (!policy::Live(record, now, timing)) {
    text +=
        fmt::format("  last {} {} is more than max-age ({}) ago: greylightd treats it as absent\n",
                    std::is_same_v<Record, policy::ReplyRecord> ? "sent" : "seen",
                    FormatTime(record->last), FormatDuration(timing.max_age));
    return std::nullopt;
  }
  return record;
}

void ShowLists(const reputation::ListVerdict& verdict, std::string& text) {
  if (!verdict.dnswl_listed() && !verdict.dnsbl_listed() && !verdict.any_failed()) {
    text += "DNS lists: no list names the client\n";
    return;
  }
  text += "DNS lists:\n";
  for (const auto& hit : verdict.dnswl) {
    text += fmt::format("  allow list {} lists the client ({})\n", hit.zone, hit.answer);
  }
  for (const auto& hit : verdict.dnsbl) {
    text += fmt::format("  block list {} lists the client ({})\n", hit.zone, hit.answer);
  }
  for (const std::string& failure : verdict.failures) {
    text += fmt::format("  {}: could not be asked, counts as not listing the client\n", failure);
  }
}

// The SPF step (--spf-keys): the result and what it does to the keys.
void ShowSpf(const spf::SpfResult& result, const cli::PolicyConfig& config, std::string& text) {
  const std::string lookup_by =
      fmt::format("--lookup-by={}", reputation::LookupByName(config.engine.lookup_by));
  std::string where;
  if (!result.mechanism.empty()) {
    where = fmt::format(", by {} in {}'s record", result.mechanism, result.record_domain);
  }
  if (spf::UsablePass(result)) {
    text += fmt::format("SPF: {}{}: the client is keyed by the domain ({}{})\n",
                        engine::SpfSummary(result), where, engine::kSpfKeyPrefix, result.domain);
  } else if (result.code == spf::SpfCode::kPass) {
    text +=
        fmt::format("SPF: {}{}: too broad to stand for one sender, keyed by {} as without SPF\n",
                    engine::SpfSummary(result), where, lookup_by);
  } else {
    std::string why = result.code == spf::SpfCode::kNone && !result.problem.empty()
                          ? fmt::format(" ({})", result.problem)
                          : "";
    text += fmt::format("SPF: {}{}{}: no SPF key, keyed by {}\n", engine::SpfSummary(result), why,
                        where, lookup_by);
  }
}

// The reply step: the reply record of (sender, recipient), and the decision if it passes.
// Returns true if the decision was the reply's.
bool ShowReply(const policy::Transition& t, const engine::Request& request,
               const engine::RequestKeys& keys, const ReadOnlyStore& store,
               const policy::GreylistTiming& timing, std::string& text) {
  if (keys.reply.empty()) {
    text += "reply tracking: not consulted for the null sender\n";
    return false;
  }
  text += fmt::format("reply tracking: key {}\n", keys.reply);
  auto reply =
      ShowLive<policy::ReplyRecord>(store.Read(store::Table::kReplies), request.now, timing, text);
  if (reply) {
    text += fmt::format(
        "  state: {} wrote to {}: replies pass until {} (max-age {} after the last message)\n",
        Printable(request.recipient), Printable(request.sender),
        FormatTime(policy::ExpiresAt(*reply, timing) - Seconds(1)), FormatDuration(timing.max_age));
  }
  if (t.reason != Reason::kReply) return false;
  text +=
      "decision: pass (reply); the triplet is not consulted and the auto-whitelist not "
      "counted\n";
  return true;
}

// The explanation of the store's part: greytraps, the auto-whitelist, the reply record, the
// triplet.
void ShowStoreSteps(const engine::Decision& decision, const engine::DecisionTrace& trace,
                    const ReadOnlyStore& store, const cli::PolicyConfig& config,
                    std::string& text) {
  const policy::GreylistTiming& timing = config.timing;
  const engine::Request& request = *decision.request;
  const UnixTime now = request.now;
  const engine::RequestKeys& keys = *trace.keys;
  const policy::Transition& t = *trace.transition;

  // Greytraps come first in policy::Decide: a trapped client is greylisted whatever its
  // auto-whitelist record and triplet say.
  std::optional<policy::TrapRecord> trap;
  if (!trace.greytraps_enabled) {
    text += "greytraps: none (no --greytrap-recipients)\n";
  } else {
    text += trace.greytrap ? fmt::format("greytrap recipients: {}: {}\n", trace.greytrap->source,
                                         trace.greytrap->entry)
                           : "greytrap recipients: no match\n";
    text += fmt::format("greytrap list: key {}\n", keys.trap);
    trap = ShowLive<policy::TrapRecord>(store.Read(store::Table::kTraps), now, timing, text);
    if (trap) {
      text += fmt::format("  state: trapped, {} left\n", FormatDuration(trap->until - now));
    }
  }
  if (t.reason == Reason::kGreytrap) {
    text += t.trap_write
                ? fmt::format(
                      "decision: greylist (greytrap, {} missing): this request puts the "
                      "client on the trap list until {}",
                      FormatDuration(t.missing), FormatTime(t.trap_write->until))
                : fmt::format(
                      "decision: greylist (greytrap, {} missing): the client is on the trap "
                      "list until {}",
                      FormatDuration(t.missing), FormatTime(trap->until));
    text += "; the auto-whitelist, the reply record and the triplet are not consulted\n";
    return;
  }

  if (trace.auto_whitelist_enabled) {
    text += fmt::format("client auto-whitelist: key {} (threshold {})\n", keys.client,
                        timing.awl_threshold);
    auto client =
        ShowLive<policy::ClientRecord>(store.Read(store::Table::kClients), now, timing, text);
    if (client) {
      text += policy::AutoWhitelisted(*client, timing)
                  ? "  state: auto-whitelisted\n"
                  : fmt::format(
                        "  state: below the threshold ({} more first deliveries, "
                        "counted at most once per hour)\n",
                        timing.awl_threshold - client->count);
    }
  } else {
    text += "client auto-whitelist: disabled (--auto-whitelist-clients=0)\n";
  }
  if (t.reason == Reason::kClientAwl) {
    text += "decision: pass (client AWL); the reply record and the triplet are not consulted\n";
    if (t.client_write) {
      text += fmt::format("  greylightd would refresh the record to count {}, last seen now\n",
                          t.client_write->count);
    }
    return;
  }
  if (ShowReply(t, request, keys, store, timing, text)) return;

  text += fmt::format("triplet: key {}\n", keys.triplet);
  auto stored =
      ShowLive<policy::TripletRecord>(store.Read(store::Table::kTriplets), now, timing, text);
  if (!stored) {
    text += "  state: new\n";
  } else if (policy::Passed(*stored, timing)) {
    text += "  state: passed (it was delivered before: later deliveries are not delayed)\n";
    text +=
        fmt::format("  expires: removed after {} unless seen again (max-age {} since last seen)\n",
                    FormatTime(policy::ExpiresAt(*stored, timing) - Seconds(1)),
                    FormatDuration(timing.max_age));
  } else {
    if (policy::Abandoned(*stored, now, timing)) {
      text += fmt::format(
          "  state: pending, abandoned: first seen more than the retry window "
          "({}) ago, so this request starts it over\n",
          FormatDuration(timing.retry_window));
    } else if (stored->first + timing.delay > now) {
      text += fmt::format("  state: pending, {} left: a retry passes from {}\n",
                          FormatDuration(stored->first + timing.delay - now),
                          FormatTime(stored->first + timing.delay));
    } else {
      text += "  state: pending, delay over: this request is its first accepted delivery\n";
    }
    text += fmt::format(
        "  retry window: a retry passes until {}; the record is removed after "
        "{} if not retried\n",
        FormatTime(stored->first + timing.retry_window),
        FormatTime(policy::ExpiresAt(*stored, timing) - Seconds(1)));
  }
  if (t.first_corrected) {
    text +=
        "  note: first seen is in the future (clock stepped back?): greylightd corrects it "
        "to now\n";
  }

  switch (t.reason) {
    case Reason::kNew:
    case Reason::kAbandoned:
    case Reason::kEarlyRetry:
      text += fmt::format(
          "decision: greylist ({}, {} missing); the record becomes first seen {}, "
          "last seen now\n",
          policy::ReasonWord(t.reason), FormatDuration(t.missing), FormatTime(t.first));
      return;
    case Reason::kPassed:
      text += "decision: pass (triplet found)\n";
      return;
    default:
      break;
  }
  text += fmt::format(
      "decision: pass (triplet found, delay={}): the first accepted delivery of this triplet; "
      "a PREPEND X-Greylist header is added (once per message: further recipients of the same "
      "delivery get DUNNO)\n",
      decision.delayed.count());
  if (trace.auto_whitelist_enabled) {
    if (t.client_write) {
      text +=
          fmt::format("  client auto-whitelist: this delivery counts: count becomes {} of {}{}\n",
                      t.client_write->count, timing.awl_threshold,
                      t.awl_threshold_reached ? "; the client becomes auto-whitelisted" : "");
    } else {
      text += "  client auto-whitelist: not counted (at most once per hour per client)\n";
    }
  }
}

// Non-owning handles for the daemon's shared lists: explain borrows the caller's.
template <typename T>
std::shared_ptr<const T> Borrowed(const T* object) {
  return std::shared_ptr<const T>(std::shared_ptr<const void>(), object);
}

}  // namespace

Result<Explanation> Explain(const ExplainRequest& request, UnixTime now, UnixTime real_now,
                            const cli::PolicyConfig& config, const ExplainInputs& inputs,
                            store::Store& store) {
  const engine::EngineOptions& options = config.engine;
  if (reputation::GroupsByDomain(options.lookup_by) && inputs.psl == nullptr) {
    return Status::InvalidArgument(fmt::format("--lookup-by={} needs the public suffix list",
                                               reputation::LookupByName(options.lookup_by)));
  }
  // The request as Postfix sends it, at the time asked for (policy_test_time), decided by
  // greylightd's own engine on a store that does not write.
  protocol::PolicyRequest wire;
  wire.Add("request", "smtpd_access_policy");
  wire.Add("protocol_state", "RCPT");
  wire.Add("client_address", request.client_address);
  wire.Add("client_name", request.client_name);
  wire.Add("sender", request.sender);
  wire.Add("recipient", request.recipient);
  if (!request.helo_name.empty()) wire.Add("helo_name", request.helo_name);
  if (request.etrn_domain) wire.Add("etrn_domain", "");
  std::string test_time = std::to_string(ToUnixSeconds(now));
  wire.Add("policy_test_time", test_time);
  engine::EngineOptions engine_options = options;
  engine_options.allow_policy_test_time = true;
  ReadOnlyStore read_only(store, config.timing);
  engine::Greylister greylister(engine_options, config.timing, read_only, inputs.psl);
  if (inputs.whitelists != nullptr) greylister.SetWhitelists(Borrowed(inputs.whitelists));
  if (inputs.greytraps != nullptr) greylister.SetGreytraps(Borrowed(inputs.greytraps));
  if (inputs.lists) greylister.SetListLookup(inputs.lists);
  if (inputs.spf) greylister.SetSpfLookup(inputs.spf);

  engine::DecisionTrace trace;
  engine::HeaderTracker headers;
  std::optional<engine::Decision> decided;
  greylister.Decide(
      wire, real_now, headers, [&decided](engine::Decision d) { decided = std::move(d); }, &trace);
  if (!decided && inputs.run_until) inputs.run_until([&decided] { return decided.has_value(); });
  if (!decided) return Status::Unavailable("the DNS lookups did not answer");
  const engine::Decision& decision = *decided;
  if (decision.reason == Reason::kStoreError) return read_only.failure();

  Explanation result;
  std::string& text = result.text;
  text += fmt::format("request: client_address={} client_name={} sender={} recipient={}\n",
                      Printable(request.client_address), Printable(request.client_name),
                      request.sender.empty() ? "<>" : Printable(request.sender),
                      Printable(request.recipient));
  text += fmt::format("time: {}\n", FormatTime(now));
  result.action = decision.action;
  auto finish = [&] {
    text += "action=" + result.action + "\n";
    return result;
  };
  if (decision.reason == Reason::kBadClientAddress) {
    text += fmt::format(
        "decision: client_address '{}' is not an IP address: greylightd logs a warning and "
        "answers DUNNO (bad client address)\n",
        Printable(request.client_address));
    return finish();
  }

  // The whitelists, in the daemon's order: client (name, then address), then recipient.
  if (!trace.whitelists_loaded) {
    text += "whitelists: none loaded\n";
  } else if (trace.client_whitelist) {
    text += fmt::format("client whitelist: {}: {}\n", trace.client_whitelist->source,
                        trace.client_whitelist->entry);
  } else {
    text += "client whitelist: no match\n";
    text += trace.recipient_whitelist
                ? fmt::format("recipient whitelist: {}: {}\n", trace.recipient_whitelist->source,
                              trace.recipient_whitelist->entry)
                : "recipient whitelist: no match\n";
  }
  if (decision.reason == Reason::kClientWhitelist ||
      decision.reason == Reason::kRecipientWhitelist) {
    text += fmt::format("decision: pass ({}); the store is not consulted\n",
                        policy::ReasonWord(decision.reason));
    return finish();
  }

  if (trace.lists) ShowLists(*trace.lists, text);
  if (trace.spf) ShowSpf(*trace.spf, config, text);
  if (decision.reason == Reason::kDnswl) {
    text += "decision: pass (dnswl); the store is not consulted\n";
    return finish();
  }
  if (decision.reason == Reason::kNotListed) {
    text +=
        "decision: pass (not listed: --greylist-only-listed and no --dnsbl zone lists the "
        "client); the store is not consulted\n";
    return finish();
  }

  if (!trace.keys->group.empty()) {
    text += trace.keys->group.starts_with(engine::kSpfKeyPrefix)
                ? fmt::format("client group: {} (--spf-keys)\n", trace.keys->group)
                : fmt::format("client group: {} (--lookup-by={})\n", trace.keys->group,
                              reputation::LookupByName(options.lookup_by));
  }
  if (options.keys.decode_srs) {
    if (auto original = policy::SrsOriginalSender(request.sender)) {
      text += fmt::format("sender: an SRS address: keyed by the original sender {}\n",
                          Printable(*original));
    }
  }
  ShowStoreSteps(decision, trace, read_only, config, text);
  return finish();
}

}  // namespace greylight::tools
