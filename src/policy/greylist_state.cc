#include "policy/greylist_state.h"

#include <algorithm>

namespace greylight::policy {

namespace {

// The client is on the trap list at `now` (a hit of this request aside).
bool Trapped(const PriorState& prior, UnixTime now) {
  return prior.trap && now < prior.trap->until;
}

// A trapped client is greylisted for the time left on its trap; `first` is reported for
// the log line only.
Transition TrappedTransition(const PriorState& prior, const TrapRecord& trap, UnixTime now) {
  Transition t;
  t.reason = Reason::kGreytrap;
  t.trapped = true;
  t.first = prior.triplet ? std::min(prior.triplet->first, now) : now;
  t.missing = std::max(trap.until - now, Seconds(1));
  return t;
}

// True if writing `next` over `stored` would only move the last sighting forward, by less
// than kLastSeenRefresh, and leave the triplet passed or pending as it was: then the write
// is skipped. What the triplet decides (first, passed) stays exactly postgrey's; only its
// expiry, counted from the last sighting, may come up to kLastSeenRefresh early.
// `stored_passed` is Passed(stored), which the caller already knows.
bool OnlyLastSeenMoves(const TripletRecord& stored, bool stored_passed, const TripletRecord& next,
                       const GreylistTiming& timing) {
  return next.first == stored.first && stored.last <= next.last &&
         next.last - stored.last < GreylistTiming::kLastSeenRefresh &&
         Passed(next, timing) == stored_passed;
}

}  // namespace

bool ReadsTriplet(const PriorState& prior, UnixTime now, const GreylistTiming& timing,
                  bool trap_hit) {
  // Decide's steps before the triplet, in its order.
  if (trap_hit || Trapped(prior, now)) return true;  // the log line reports its first
  if (prior.client && AutoWhitelisted(*prior.client, timing)) return false;
  return !prior.reply;
}

Transition Decide(const PriorState& prior, UnixTime now, const GreylistTiming& timing,
                  bool trap_hit) {
  if (trap_hit) {
    UnixTime until = now + timing.trap_ttl;
    if (prior.trap) until = std::max(until, prior.trap->until);
    TrapRecord trap{until, now};
    Transition t = TrappedTransition(prior, trap, now);
    t.trap_write = trap;
    return t;
  }
  if (Trapped(prior, now)) return TrappedTransition(prior, *prior.trap, now);

  Transition t;
  const bool awl_enabled = timing.awl_threshold > 0;
  if (prior.client && AutoWhitelisted(*prior.client, timing)) {
    t.client_awl_pass = true;
    t.reason = Reason::kClientAwl;
    const ClientRecord& client = *prior.client;
    // Refreshed at most hourly, "for statistics" in postgrey's words; a last-seen in the
    // future (clock stepped back) is refreshed too.
    if (now >= client.last + GreylistTiming::kAwlCountInterval || client.last > now) {
      t.client_write = ClientRecord{client.count + 1, now};
    }
    return t;
  }

  if (prior.reply) {
    t.reason = Reason::kReply;
    return t;
  }

  t.first = now;
  bool abandoned = false;
  if (prior.triplet) {
    const TripletRecord& stored = *prior.triplet;
    t.first = stored.first;
    if (Passed(stored, timing)) {
      t.last_was_successful = true;
    } else if (Abandoned(stored, now, timing)) {
      abandoned = true;
      t.first = now;  // the earlier attempt was abandoned: start over
    }
    if (t.first > now) {
      t.first_corrected = true;
      t.first = now;
    }
  }
  const TripletRecord next{t.first, now};
  if (!prior.triplet || !OnlyLastSeenMoves(*prior.triplet, t.last_was_successful, next, timing)) {
    t.triplet_write = next;
  }
  t.missing = timing.delay - (now - t.first);
  if (t.missing > Seconds(0)) {
    t.reason = t.first != now ? Reason::kEarlyRetry : abandoned ? Reason::kAbandoned : Reason::kNew;
  } else {
    t.reason = t.last_was_successful ? Reason::kPassed : Reason::kPassFirst;
  }

  if (awl_enabled && t.missing <= Seconds(0) && !t.last_was_successful &&
      (!prior.client || now >= prior.client->last + GreylistTiming::kAwlCountInterval)) {
    long long count = (prior.client ? prior.client->count : 0) + 1;
    t.client_write = ClientRecord{count, now};
    t.awl_threshold_reached = count == timing.awl_threshold;
  }
  return t;
}

std::optional<TripletRecord> Live(std::optional<TripletRecord> record, UnixTime now,
                                  const GreylistTiming& timing) {
  if (record && now - record->last > timing.max_age) return std::nullopt;
  return record;
}

std::optional<ClientRecord> Live(std::optional<ClientRecord> record, UnixTime now,
                                 const GreylistTiming& timing) {
  if (record && now - record->last > timing.max_age) return std::nullopt;
  return record;
}

std::optional<ReplyRecord> Live(std::optional<ReplyRecord> record, UnixTime now,
                                const GreylistTiming& timing) {
  if (record && now - record->last > timing.max_age) return std::nullopt;
  return record;
}

bool AutoWhitelisted(const ClientRecord& record, const GreylistTiming& timing) {
  return timing.awl_threshold > 0 && record.count >= timing.awl_threshold;
}

std::optional<TrapRecord> Live(std::optional<TrapRecord> record, UnixTime now) {
  if (record && Expired(*record, now)) return std::nullopt;
  return record;
}

bool Passed(const TripletRecord& record, const GreylistTiming& timing) {
  return record.last - record.first >= timing.delay;
}

bool Abandoned(const TripletRecord& record, UnixTime now, const GreylistTiming& timing) {
  return !Passed(record, timing) && now - record.first > timing.retry_window;
}

UnixTime ExpiresAt(const TripletRecord& record, const GreylistTiming& timing) {
  Seconds kept =
      Passed(record, timing) ? timing.max_age : std::min(timing.max_age, timing.retry_window);
  return record.last + kept + Seconds(1);
}

UnixTime ExpiresAt(const ClientRecord& record, const GreylistTiming& timing) {
  return record.last + timing.max_age + Seconds(1);
}

UnixTime ExpiresAt(const TrapRecord& record) { return record.until; }

UnixTime ExpiresAt(const ReplyRecord& record, const GreylistTiming& timing) {
  return record.last + timing.max_age + Seconds(1);
}

ReplyRecord RecordOutbound(const std::optional<ReplyRecord>& prior, UnixTime now) {
  long long count = prior ? std::min(prior->count, kMaxRecordField - 1) + 1 : 1;
  return ReplyRecord{count, now};
}

bool Expired(const TripletRecord& record, UnixTime now, const GreylistTiming& timing) {
  return now >= ExpiresAt(record, timing);
}

bool Expired(const ClientRecord& record, UnixTime now, const GreylistTiming& timing) {
  return now >= ExpiresAt(record, timing);
}

bool Expired(const TrapRecord& record, UnixTime now) { return now >= ExpiresAt(record); }

bool Expired(const ReplyRecord& record, UnixTime now, const GreylistTiming& timing) {
  return now >= ExpiresAt(record, timing);
}

}  // namespace greylight::policy
