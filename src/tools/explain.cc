#include "tools/explain.h"

#include <fmt/format.h>

#include <optional>
#include <type_traits>

#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/ip_address.h"
#include "policy/records.h"
#include "policy/reply_text.h"
#include "tools/output_format.h"
#include "tools/record_filter.h"
#include "tools/tool_keys.h"

namespace greylight::tools {
namespace {

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

// A stored record as greylightd would see it: decoded, then dropped if malformed or no
// longer live (last seen more than max-age ago; a trap that has ended). Appends what was
// found to `text`.
template <typename Record>
std::optional<Record> ReadLive(const std::optional<std::string>& raw, UnixTime now,
                               const policy::GreylistTiming& timing, std::string& text) {
  if (!raw) {
    text += "  stored: none\n";
    return std::nullopt;
  }
  std::optional<Record> record = DecodeRecord<Record>(*raw);
  if (!record) {
    text += fmt::format("  stored value '{}' is malformed: greylightd treats it as absent\n",
                        Printable(*raw));
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
    text += fmt::format(
        "  last seen {} is more than max-age ({}) ago: greylightd treats it as absent\n",
        FormatTime(record->last), FormatDuration(timing.max_age));
    return std::nullopt;
  }
  return record;
}

}  // namespace

Result<Explanation> Explain(const ExplainRequest& request, UnixTime now, UnixTime real_now,
                            const cli::PolicyConfig& config, const ExplainInputs& inputs,
                            store::Store& store) {
  const engine::EngineOptions& options = config.engine;
  const policy::GreylistTiming& timing = config.timing;
  if (reputation::GroupsByDomain(options.lookup_by) && inputs.psl == nullptr) {
    return Status::InvalidArgument(fmt::format("--lookup-by={} needs the public suffix list",
                                               reputation::LookupByName(options.lookup_by)));
  }
  Explanation result;
  std::string& text = result.text;
  text += fmt::format("request: client_address={} client_name={} sender={} recipient={}\n",
                      Printable(request.client_address), Printable(request.client_name),
                      request.sender.empty() ? "<>" : Printable(request.sender),
                      Printable(request.recipient));
  text += fmt::format("time: {}\n", FormatTime(now));
  auto finish = [&](std::string action) {
    text += "action=" + action + "\n";
    result.action = std::move(action);
    return result;
  };
  auto greylist_action = [&](Seconds missing) {
    return policy::GreylistAction(options.greylist_action, options.greylist_text,
                                  request.etrn_domain, missing, request.recipient);
  };

  std::optional<policy::IpAddress> client = policy::IpAddress::Parse(request.client_address);
  if (!client) {
    text += fmt::format(
        "decision: client_address '{}' is not an IP address: greylightd logs a warning and "
        "answers DUNNO (bad client address)\n",
        Printable(request.client_address));
    return finish("DUNNO");
  }

  // The whitelists, in the daemon's order: client (name, then address), then recipient.
  if (inputs.whitelists == nullptr) {
    text += "whitelists: none loaded\n";
  } else {
    if (auto hit = inputs.whitelists->MatchClient(request.client_name, *client)) {
      text += fmt::format("client whitelist: {}: {}\n", hit->source, hit->entry);
      text += "decision: pass (client whitelist); the store is not consulted\n";
      return finish("DUNNO");
    }
    text += "client whitelist: no match\n";
    if (auto hit = inputs.whitelists->MatchRecipient(request.recipient)) {
      text += fmt::format("recipient whitelist: {}: {}\n", hit->source, hit->entry);
      text += "decision: pass (recipient whitelist); the store is not consulted\n";
      return finish("DUNNO");
    }
    text += "recipient whitelist: no match\n";
  }

  const engine::RequestKeys keys =
      engine::BuildRequestKeys(*client, request.client_name, request.sender, request.recipient,
                               KeySchemeFor(config, inputs.psl));
  if (!keys.group.empty()) {
    text += fmt::format("client group: {} (--lookup-by={})\n", keys.group,
                        reputation::LookupByName(options.lookup_by));
  }

  // Greytraps come first in policy::Decide: a trapped client is greylisted whatever its
  // auto-whitelist record and triplet say.
  policy::PriorState prior;
  bool trap_hit = false;
  const reputation::Greytraps* greytraps = inputs.greytraps;
  if (greytraps == nullptr) {
    text += "greytraps: none (no --greytrap-recipients)\n";
  } else {
    if (auto hit = greytraps->Match(request.recipient)) {
      trap_hit = true;
      text += fmt::format("greytrap recipients: {}: {}\n", hit->source, hit->entry);
    } else {
      text += "greytrap recipients: no match\n";
    }
    auto raw = store.Get(store::Table::kTraps, keys.trap);
    if (!raw.ok()) return raw.status();
    text += fmt::format("greytrap list: key {}\n", keys.trap);
    prior.trap = ReadLive<policy::TrapRecord>(*raw, now, timing, text);
    if (prior.trap) {
      text += fmt::format("  state: trapped, {} left\n", FormatDuration(prior.trap->until - now));
    }
  }
  policy::Transition t = policy::Decide(prior, now, timing, trap_hit);
  if (t.trapped) {
    text += t.trap_write
                ? fmt::format(
                      "decision: greylist (greytrap, {} missing): this request puts the "
                      "client on the trap list until {}",
                      FormatDuration(t.missing), FormatTime(t.trap_write->until))
                : fmt::format(
                      "decision: greylist (greytrap, {} missing): the client is on the trap "
                      "list until {}",
                      FormatDuration(t.missing), FormatTime(prior.trap->until));
    text += "; the auto-whitelist and the triplet are not consulted\n";
    return finish(greylist_action(t.missing));
  }

  if (options.awl_enabled) {
    auto raw = store.Get(store::Table::kClients, keys.client);
    if (!raw.ok()) return raw.status();
    text += fmt::format("client auto-whitelist: key {} (threshold {})\n", keys.client,
                        timing.awl_threshold);
    prior.client = ReadLive<policy::ClientRecord>(*raw, now, timing, text);
    if (prior.client) {
      text += policy::AutoWhitelisted(*prior.client, timing)
                  ? "  state: auto-whitelisted\n"
                  : fmt::format(
                        "  state: below the threshold ({} more first deliveries, "
                        "counted at most once per hour)\n",
                        timing.awl_threshold - prior.client->count);
    }
  } else {
    text += "client auto-whitelist: disabled (--auto-whitelist-clients=0)\n";
  }

  auto raw = store.Get(store::Table::kTriplets, keys.triplet);
  if (!raw.ok()) return raw.status();

  t = policy::Decide(prior, now, timing, trap_hit);
  if (t.client_awl_pass) {
    text += "decision: pass (client AWL); the triplet is not consulted\n";
    if (t.client_write) {
      text += fmt::format("  greylightd would refresh the record to count {}, last seen now\n",
                          t.client_write->count);
    }
    return finish("DUNNO");
  }

  text += fmt::format("triplet: key {}\n", keys.triplet);
  prior.triplet = ReadLive<policy::TripletRecord>(*raw, now, timing, text);
  if (!prior.triplet) {
    text += "  state: new\n";
  } else {
    const policy::TripletRecord& stored = *prior.triplet;
    if (stored.last - stored.first >= timing.delay) {
      text += "  state: passed (it was delivered before: later deliveries are not delayed)\n";
      text += fmt::format(
          "  expires: removed after {} unless seen again (max-age {} since last "
          "seen)\n",
          FormatTime(stored.last + timing.max_age), FormatDuration(timing.max_age));
    } else {
      if (now - stored.first > timing.retry_window) {
        text += fmt::format(
            "  state: pending, abandoned: first seen more than the retry window "
            "({}) ago, so this request starts it over\n",
            FormatDuration(timing.retry_window));
      } else if (stored.first + timing.delay > now) {
        text += fmt::format("  state: pending, {} left: a retry passes from {}\n",
                            FormatDuration(stored.first + timing.delay - now),
                            FormatTime(stored.first + timing.delay));
      } else {
        text += "  state: pending, delay over: this request is its first accepted delivery\n";
      }
      text += fmt::format(
          "  retry window: a retry passes until {}; the record is removed after "
          "{} if not retried\n",
          FormatTime(stored.first + timing.retry_window),
          FormatTime(stored.last + timing.retry_window));
    }
  }
  // Decided again with the triplet: Decide() only looks at it past the AWL check.
  t = policy::Decide(prior, now, timing, trap_hit);
  if (t.first_corrected) {
    text +=
        "  note: first seen is in the future (clock stepped back?): greylightd corrects it "
        "to now\n";
  }

  if (t.greylisted()) {
    text += fmt::format(
        "decision: greylist ({}, {} missing); the record becomes first seen {}, "
        "last seen now\n",
        t.first == now ? "new" : "early-retry", FormatDuration(t.missing), FormatTime(t.first));
    return finish(greylist_action(t.missing));
  }
  if (t.last_was_successful) {
    text += "decision: pass (triplet found)\n";
    return finish("DUNNO");
  }
  Seconds delayed = now - t.first;
  text += fmt::format(
      "decision: pass (triplet found, delay={}): the first accepted delivery of this triplet; "
      "a PREPEND X-Greylist header is added (once per message: further recipients of the same "
      "delivery get DUNNO)\n",
      delayed.count());
  if (options.awl_enabled) {
    if (t.client_write) {
      text +=
          fmt::format("  client auto-whitelist: this delivery counts: count becomes {} of {}{}\n",
                      t.client_write->count, timing.awl_threshold,
                      t.awl_threshold_reached ? "; the client becomes auto-whitelisted" : "");
    } else {
      text += "  client auto-whitelist: not counted (at most once per hour per client)\n";
    }
  }
  return finish("PREPEND " + policy::XGreylistHeader(options.x_greylist_header, delayed,
                                                     options.version, policy::HeaderDate(real_now),
                                                     options.hostname));
}

}  // namespace greylight::tools
