#include "tools/explain.h"

#include <fmt/format.h>

#include <optional>

#include "policy/greylist_state.h"
#include "policy/ip_address.h"
#include "policy/records.h"
#include "policy/reply_text.h"
#include "policy/triplet_key.h"
#include "tools/output_format.h"

namespace greylight::tools {
namespace {

// A stored record as greylightd would see it: decoded, then dropped if malformed or
// last seen more than max-age ago. Appends what was found to `text`.
template <typename Record>
std::optional<Record> ReadLive(const std::optional<std::string>& raw, UnixTime now,
                               const policy::GreylistTiming& timing, std::string& text) {
  if (!raw) return std::nullopt;
  std::optional<Record> record;
  if constexpr (std::is_same_v<Record, policy::TripletRecord>) {
    record = policy::DecodeTriplet(*raw);
  } else {
    record = policy::DecodeClient(*raw);
  }
  if (!record) {
    text += fmt::format("  stored value '{}' is malformed: greylightd treats it as absent\n",
                        Printable(*raw));
    return std::nullopt;
  }
  std::optional<Record> live = policy::Live(record, now, timing);
  if (!live) {
    text += fmt::format(
        "  last seen {} is more than max-age ({}) ago: greylightd treats it as absent\n",
        FormatTime(record->last), FormatDuration(timing.max_age));
  }
  return live;
}

}  // namespace

Result<Explanation> Explain(const ExplainRequest& request, UnixTime now, UnixTime real_now,
                            const cli::PolicyConfig& config,
                            const policy::WhitelistMatcher* whitelists, store::Store& store) {
  const engine::EngineOptions& options = config.engine;
  const policy::GreylistTiming& timing = config.timing;
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

  std::optional<policy::IpAddress> client = policy::IpAddress::Parse(request.client_address);
  if (!client) {
    text += fmt::format(
        "decision: client_address '{}' is not an IP address: greylightd logs a warning and "
        "answers DUNNO (bad client address)\n",
        Printable(request.client_address));
    return finish("DUNNO");
  }

  // The whitelists, in the daemon's order: client (name, then address), then recipient.
  if (whitelists == nullptr) {
    text += "whitelists: none loaded\n";
  } else {
    if (auto hit = whitelists->MatchClient(request.client_name, *client)) {
      text += fmt::format("client whitelist: {}: {}\n", hit->source, hit->entry);
      text += "decision: pass (client whitelist); the store is not consulted\n";
      return finish("DUNNO");
    }
    text += "client whitelist: no match\n";
    if (auto hit = whitelists->MatchRecipient(request.recipient)) {
      text += fmt::format("recipient whitelist: {}: {}\n", hit->source, hit->entry);
      text += "decision: pass (recipient whitelist); the store is not consulted\n";
      return finish("DUNNO");
    }
    text += "recipient whitelist: no match\n";
  }

  policy::PriorState prior;
  if (options.awl_enabled) {
    std::string client_key = policy::ClientKey(*client, options.keys);
    auto raw = store.Get(store::Table::kClients, client_key);
    if (!raw.ok()) return raw.status();
    text += fmt::format("client auto-whitelist: key {} (threshold {})\n", client_key,
                        timing.awl_threshold);
    if (!*raw) text += "  stored: none\n";
    if (*raw) {
      if (auto record = policy::DecodeClient(**raw)) {
        text += fmt::format("  stored: count {}, last seen {}\n", record->count,
                            FormatTime(record->last));
      }
    }
    prior.client = ReadLive<policy::ClientRecord>(*raw, now, timing, text);
    if (prior.client) {
      text += prior.client->count >= timing.awl_threshold
                  ? "  state: auto-whitelisted\n"
                  : fmt::format(
                        "  state: below the threshold ({} more first deliveries, "
                        "counted at most once per hour)\n",
                        timing.awl_threshold - prior.client->count);
    }
  } else {
    text += "client auto-whitelist: disabled (--auto-whitelist-clients=0)\n";
  }

  std::string key = policy::TripletKey(*client, request.sender, request.recipient, options.keys);
  auto raw = store.Get(store::Table::kTriplets, key);
  if (!raw.ok()) return raw.status();

  policy::Transition t = policy::Decide(prior, now, timing);
  if (t.client_awl_pass) {
    text += "decision: pass (client AWL); the triplet is not consulted\n";
    if (t.client_write) {
      text += fmt::format("  greylightd would refresh the record to count {}, last seen now\n",
                          t.client_write->count);
    }
    return finish("DUNNO");
  }

  text += fmt::format("triplet: key {}\n", key);
  if (!*raw) text += "  stored: none\n";
  if (*raw) {
    if (auto record = policy::DecodeTriplet(**raw)) {
      text += fmt::format("  stored: first seen {}, last seen {}\n", FormatTime(record->first),
                          FormatTime(record->last));
    }
  }
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
  t = policy::Decide(prior, now, timing);
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
    return finish(policy::GreylistAction(options.greylist_action, options.greylist_text,
                                         request.etrn_domain, t.missing, request.recipient));
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
