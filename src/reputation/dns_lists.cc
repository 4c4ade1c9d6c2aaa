#include "reputation/dns_lists.h"

#include <ares.h>

#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <charconv>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace greylight::reputation {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kClassIn = 1;
constexpr size_t kHeaderSize = 12;
constexpr size_t kSoaFixedFields = 20;  // serial, refresh, retry, expire, minimum
constexpr size_t kMaxZoneLength = 200;  // leaves room for the 64-character IPv6 prefix
constexpr size_t kMaxNameLength = 255;  // RFC 1035 section 2.3.4, in wire format
// More compression jumps than a name of 127 one-byte labels could need is a loop.
constexpr int kMaxPointerHops = 128;
// c-ares gets half the lookup timeout per attempt, so one lost UDP packet is retransmitted
// before our own deadline ends the lookup.
constexpr int kAresTries = 2;

// RFC 2181 section 8: a TTL with the top bit set is to be taken as zero.
Seconds TtlFromWire(uint32_t ttl) {
  return Seconds(ttl > 0x7fffffffU ? 0 : static_cast<long long>(ttl));
}

// A bounds-checked cursor over a DNS message. Every read fails (and stays failed) rather
// than leaving the buffer, so garbage yields "malformed", never a crash.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> message) : message_(message) {}

  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }

  uint16_t U16() {
    if (!Need(2)) return 0;
    uint16_t value = static_cast<uint16_t>((message_[pos_] << 8) | message_[pos_ + 1]);
    pos_ += 2;
    return value;
  }
  uint32_t U32() {
    uint32_t high = U16();
    uint32_t low = U16();
    return (high << 16) | low;
  }
  void Skip(size_t count) {
    if (Need(count)) pos_ += count;
  }
  // Skips the encoded name at the cursor after checking that the name it spells is well
  // formed: labels and compression pointers, at most kMaxPointerHops jumps and
  // kMaxNameLength bytes, all inside the message. A pointer loop is thus rejected rather
  // than followed forever, and a record whose owner name is garbage makes the whole answer
  // malformed instead of being believed.
  void SkipName() {
    if (!ok_) return;
    size_t pos = pos_;
    size_t end = 0;  // where the name's in-place encoding ends
    bool jumped = false;
    int hops = 0;
    size_t length = 0;
    while (true) {
      if (pos >= message_.size()) return Fail();
      const uint8_t label = message_[pos];
      if ((label & 0xC0) == 0xC0) {
        if (pos + 1 >= message_.size() || ++hops > kMaxPointerHops) return Fail();
        if (!jumped) end = pos + 2;
        jumped = true;
        pos = (static_cast<size_t>(label & 0x3F) << 8) | message_[pos + 1];
        continue;
      }
      if ((label & 0xC0) != 0) return Fail();  // the obsolete extended label types
      if (label == 0) {
        if (!jumped) end = pos + 1;
        break;
      }
      length += 1u + label;
      if (length > kMaxNameLength) return Fail();
      pos += 1u + label;
    }
    pos_ = end;
  }
  std::array<uint8_t, 4> Address() {
    std::array<uint8_t, 4> address{};
    if (!Need(4)) return address;
    std::copy_n(message_.begin() + static_cast<std::ptrdiff_t>(pos_), 4, address.begin());
    pos_ += 4;
    return address;
  }
  void SeekTo(size_t pos) {
    if (pos > message_.size()) {
      ok_ = false;
    } else {
      pos_ = pos;
    }
  }

 private:
  void Fail() { ok_ = false; }
  bool Need(size_t count) {
    if (ok_ && message_.size() - pos_ >= count) return true;
    ok_ = false;
    return false;
  }

  std::span<const uint8_t> message_;
  size_t pos_ = 0;
  bool ok_ = true;
};

ListAnswer Failed(std::string error) {
  ListAnswer answer;
  answer.kind = ListAnswer::Kind::kFailed;
  answer.error = std::move(error);
  return answer;
}

std::string RcodeName(unsigned rcode) {
  switch (rcode) {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return "rcode " + std::to_string(rcode);
  }
}

std::string AddressText(const std::array<uint8_t, 4>& a) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  return buffer;
}

bool ValidZone(std::string_view zone) {
  if (zone.empty() || zone.size() > kMaxZoneLength) return false;
  size_t label = 0;
  for (char c : zone) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!allowed || ++label > 63) return false;
  }
  return label > 0;
}

std::optional<unsigned> ParseNumber(std::string_view text, unsigned max) {
  unsigned value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

// One octet of a code pattern: "2", "[2..11]", "[2;4;10..11]".
std::optional<std::bitset<256>> ParseOctet(std::string_view text) {
  std::bitset<256> set;
  if (auto value = ParseNumber(text, 255)) {
    set.set(*value);
    return set;
  }
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  while (true) {
    size_t semicolon = text.find(';');
    std::string_view item = text.substr(0, semicolon);
    size_t dots = item.find("..");
    if (dots == std::string_view::npos) {
      auto value = ParseNumber(item, 255);
      if (!value) return std::nullopt;
      set.set(*value);
    } else {
      auto low = ParseNumber(item.substr(0, dots), 255);
      auto high = ParseNumber(item.substr(dots + 2), 255);
      if (!low || !high || *low > *high) return std::nullopt;
      for (unsigned v = *low; v <= *high; ++v) set.set(v);
    }
    if (semicolon == std::string_view::npos) return set;
    text = text.substr(semicolon + 1);
  }
}

std::optional<CodePattern> ParseCodePattern(std::string_view text) {
  CodePattern pattern;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    auto prefix = ParseNumber(text.substr(slash + 1), 32);
    auto network = policy::IpAddress::Parse(text.substr(0, slash));
    if (!prefix || !network || network->is_v6) return std::nullopt;
    for (int i = 0; i < 4; ++i) {
      const int bits_here = std::clamp(static_cast<int>(*prefix) - 8 * i, 0, 8);
      const unsigned mask = bits_here == 0 ? 0 : (0xFFu << (8 - bits_here)) & 0xFFu;
      const unsigned low = network->bytes[static_cast<size_t>(i)] & mask;
      const unsigned high = low | (~mask & 0xFFu);
      for (unsigned v = low; v <= high; ++v) pattern.octets[static_cast<size_t>(i)].set(v);
    }
    return pattern;
  }
  // Split on the dots outside brackets.
  size_t octet = 0;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size()) {
      if (text[i] == '[') ++depth;
      if (text[i] == ']') --depth;
      if (text[i] != '.' || depth != 0) continue;
    }
    if (octet >= 4) return std::nullopt;
    auto set = ParseOctet(text.substr(start, i - start));
    if (!set) return std::nullopt;
    pattern.octets[octet++] = *set;
    start = i + 1;
  }
  if (octet != 4) return std::nullopt;
  return pattern;
}

// 127.0.0.0/8 without 127.255.255.0/24 (see DnsList).
std::vector<CodePattern> DefaultCodes() {
  CodePattern lower;  // 127.[0..254].*.*
  lower.octets[0].set(127);
  for (unsigned v = 0; v <= 254; ++v) lower.octets[1].set(v);
  lower.octets[2].set();
  lower.octets[3].set();
  CodePattern upper;  // 127.255.[0..254].*
  upper.octets[0].set(127);
  upper.octets[1].set(255);
  for (unsigned v = 0; v <= 254; ++v) upper.octets[2].set(v);
  upper.octets[3].set();
  return {lower, upper};
}

}  // namespace

std::string_view ListKindName(ListKind kind) {
  return kind == ListKind::kAllow ? "dnswl" : "dnsbl";
}

bool CodePattern::Matches(const std::array<uint8_t, 4>& answer) const {
  for (size_t i = 0; i < 4; ++i) {
    if (!octets[i].test(answer[i])) return false;
  }
  return true;
}

Result<DnsList> DnsList::Parse(ListKind kind, std::string_view spec) {
  DnsList list;
  list.kind = kind;
  list.spec = std::string(spec);
  auto error = [&](std::string_view why) {
    return Status::InvalidArgument("--" + std::string(ListKindName(kind)) + " " +
                                   std::string(spec) + ": " + std::string(why));
  };
  size_t equals = spec.find('=');
  std::string_view zone = spec.substr(0, equals);
  if (zone.ends_with('.')) zone.remove_suffix(1);
  list.zone.reserve(zone.size());
  for (char c : zone)
    list.zone.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  if (!ValidZone(list.zone)) return error("not a valid DNS zone name");
  if (equals == std::string_view::npos) {
    list.codes = DefaultCodes();
    return list;
  }
  std::string_view codes = spec.substr(equals + 1);
  if (codes.empty()) return error("no codes after '='");
  // Commas separate patterns; a comma inside brackets would be a typo for ';'.
  while (true) {
    size_t comma = codes.find(',');
    std::string_view item = codes.substr(0, comma);
    auto pattern = ParseCodePattern(item);
    if (!pattern) {
      return error("bad code '" + std::string(item) +
                   "' (want 127.0.0.2, 127.0.0.[2..11], 127.0.[0;1].[2;4..7] or 127.0.0.0/24)");
    }
    list.codes.push_back(*pattern);
    if (comma == std::string_view::npos) break;
    codes = codes.substr(comma + 1);
  }
  return list;
}

bool DnsList::Accepts(const std::array<uint8_t, 4>& answer) const {
  return std::any_of(codes.begin(), codes.end(),
                     [&](const CodePattern& pattern) { return pattern.Matches(answer); });
}

ListAnswer ParseListResponse(std::span<const uint8_t> message, Seconds default_negative_ttl) {
  if (message.size() < kHeaderSize) return Failed("malformed answer");
  Reader reader(message);
  reader.U16();  // id: c-ares has matched it to the query
  const uint16_t flags = reader.U16();
  const uint16_t questions = reader.U16();
  const uint16_t answers = reader.U16();
  const uint16_t authorities = reader.U16();
  reader.U16();                                                  // additional records: not needed
  if ((flags & 0x8000) == 0) return Failed("malformed answer");  // QR: not a response
  const unsigned rcode = flags & 0x000F;
  if (rcode != 0 && rcode != 3) return Failed(RcodeName(rcode));

  for (unsigned i = 0; i < questions && reader.ok(); ++i) {
    reader.SkipName();
    reader.Skip(4);  // type, class
  }
  ListAnswer result;
  std::optional<Seconds> ttl;
  for (unsigned i = 0; i < answers && reader.ok(); ++i) {
    reader.SkipName();
    const uint16_t type = reader.U16();
    const uint16_t rr_class = reader.U16();
    const Seconds rr_ttl = TtlFromWire(reader.U32());
    const uint16_t length = reader.U16();
    const size_t rdata_end = reader.pos() + length;
    if (type == kTypeA && rr_class == kClassIn && rcode == 0) {
      if (length != 4) return Failed("malformed answer");
      result.addresses.push_back(reader.Address());
      ttl = ttl ? std::min(*ttl, rr_ttl) : rr_ttl;
    }
    reader.SeekTo(rdata_end);
  }
  if (!reader.ok()) return Failed("malformed answer");
  if (!result.addresses.empty()) {
    result.kind = ListAnswer::Kind::kListed;
    result.ttl = *ttl;
    return result;
  }

  // Not listed. RFC 2308: the negative TTL is min(SOA TTL, SOA MINIMUM) from the authority
  // section.
  result.kind = ListAnswer::Kind::kNotListed;
  result.ttl = default_negative_ttl;
  for (unsigned i = 0; i < authorities && reader.ok(); ++i) {
    reader.SkipName();
    const uint16_t type = reader.U16();
    reader.U16();  // class
    const Seconds rr_ttl = TtlFromWire(reader.U32());
    const uint16_t length = reader.U16();
    const size_t rdata_end = reader.pos() + length;
    if (type == kTypeSoa && reader.ok()) {
      reader.SkipName();  // MNAME
      reader.SkipName();  // RNAME
      if (reader.ok() && reader.pos() + kSoaFixedFields <= rdata_end) {
        reader.Skip(kSoaFixedFields - 4);
        const Seconds minimum = TtlFromWire(reader.U32());
        if (reader.ok()) {
          result.ttl = std::min(rr_ttl, minimum);
          return result;
        }
      }
      return Failed("malformed answer");
    }
    reader.SeekTo(rdata_end);
  }
  if (!reader.ok()) return Failed("malformed answer");
  return result;
}

std::string ListQueryName(const policy::IpAddress& client, std::string_view zone) {
  const auto& b = client.bytes;
  const bool mapped_v4 = client.is_v6 &&
                         std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) &&
                         b[10] == 0xFF && b[11] == 0xFF;
  std::string name;
  if (!client.is_v6 || mapped_v4) {
    const size_t at = mapped_v4 ? 12 : 0;
    char buffer[20];
    std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u.", b[at + 3], b[at + 2], b[at + 1], b[at]);
    name = buffer;
  } else {
    static constexpr char kHexDigits[] = "0123456789abcdef";
    name.reserve(64 + zone.size());
    for (size_t i = 16; i-- > 0;) {
      name.push_back(kHexDigits[b[i] & 0xF]);
      name.push_back('.');
      name.push_back(kHexDigits[b[i] >> 4]);
      name.push_back('.');
    }
  }
  name.append(zone);
  return name;
}

// All DNS state lives here and is touched only on `strand_`. Every handler holds a
// shared_ptr to the Impl, so the object outlives the last callback even after the
// DnsListChecker that owns it is gone.
class DnsListChecker::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, DnsListOptions options, const Clock& clock)
      : io_(io),
        strand_(asio::make_strand(io)),
        options_(std::move(options)),
        clock_(clock),
        service_timer_(strand_) {}

  ~Impl() {
    if (channel_ != nullptr) ares_destroy(channel_);
  }

  Status Init() {
    static std::once_flag once;
    static int library_status = ARES_SUCCESS;
    std::call_once(once, [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (library_status != ARES_SUCCESS) {
      return Status::Unavailable(std::string("c-ares: ") + ares_strerror(library_status));
    }
    ares_options ares{};
    ares.sock_state_cb = &Impl::OnSocketState;
    ares.sock_state_cb_data = this;
    ares.timeout = static_cast<int>(std::max<long long>(1, options_.timeout.count() / kAresTries));
    ares.tries = kAresTries;
    // Without NOCHECKRESP, c-ares 1.18 turns a SERVFAIL or REFUSED answer into "could not
    // contact DNS servers" after trying the other resolvers; with it we see the rcode and
    // answer at once. A resolver that answers SERVFAIL is working and reporting trouble
    // upstream, which another resolver would most likely hit too.
    ares.flags = ARES_FLAG_NOCHECKRESP;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    int status = ares_init_options(&channel_, &ares, mask);
    if (status != ARES_SUCCESS) {
      channel_ = nullptr;
      return Status::Unavailable(std::string("c-ares: ") + ares_strerror(status));
    }
    if (!options_.servers.empty()) {
      status = ares_set_servers_ports_csv(channel_, options_.servers.c_str());
      if (status != ARES_SUCCESS) {
        return Status::InvalidArgument("DNS servers '" + options_.servers +
                                       "': " + ares_strerror(status));
      }
    }
    return Status::Ok();
  }

  void Lookup(const policy::IpAddress& client, ListCallback done) {
    stats_lookups_.fetch_add(1, std::memory_order_relaxed);
    asio::post(strand_, [self = shared_from_this(), client, done = std::move(done)]() mutable {
      self->Start(client, std::move(done));
    });
  }

  // Answers every pending lookup as failed and releases c-ares. Called on the strand.
  void Close() {
    if (closed_) return;
    closed_ = true;
    auto in_flight = std::move(in_flight_);
    in_flight_.clear();
    for (auto& [name, waiters] : in_flight) {
      for (Waiter& waiter : waiters) {
        FailWaiting(*waiter.pending, "shut down");
        Finish(*waiter.pending);
      }
    }
    service_timer_.cancel();
    if (channel_ != nullptr) {
      ares_destroy(channel_);  // queries end with ARES_EDESTRUCTION, sockets are released
      channel_ = nullptr;
    }
    watches_.clear();
  }

  asio::strand<asio::io_context::executor_type>& strand() { return strand_; }

  DnsListStats Stats() const {
    DnsListStats stats;
    stats.lookups = stats_lookups_.load(std::memory_order_relaxed);
    stats.cache_hits = stats_cache_hits_.load(std::memory_order_relaxed);
    stats.queries = stats_queries_.load(std::memory_order_relaxed);
    stats.failures = stats_failures_.load(std::memory_order_relaxed);
    stats.timeouts = stats_timeouts_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  enum class ListState { kWaiting, kListed, kNotListed, kFailed };

  // One Lookup call.
  struct Pending {
    explicit Pending(asio::strand<asio::io_context::executor_type>& strand) : deadline(strand) {}
    ListCallback done;
    std::vector<ListState> states;
    std::vector<std::string> details;  // the accepted answer or the failure reason
    size_t remaining = 0;
    bool finished = false;
    asio::steady_timer deadline;
  };
  struct Waiter {
    std::shared_ptr<Pending> pending;
    size_t list_index;
  };
  // A socket c-ares asked us to watch. The descriptor never owns the fd: c-ares closes
  // it, after telling us to stop watching (release() below).
  struct Watch {
    Watch(asio::io_context& io, ares_socket_t socket) : descriptor(io), fd(socket) {}
    asio::posix::stream_descriptor descriptor;
    ares_socket_t fd;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;
    bool writing = false;
    bool closed = false;
  };
  struct QueryArg {
    Impl* impl;
    std::string name;
  };
  struct CacheEntry {
    std::string name;
    ListAnswer answer;
    UnixTime expires;
  };

  void Start(const policy::IpAddress& client, ListCallback done) {
    auto pending = std::make_shared<Pending>(strand_);
    pending->done = std::move(done);
    const size_t count = options_.lists.size();
    pending->states.assign(count, ListState::kWaiting);
    pending->details.assign(count, std::string());
    pending->remaining = count;
    if (closed_) {
      FailWaiting(*pending, "shut down");
      Finish(*pending);
      return;
    }
    const UnixTime now = clock_.Now();
    for (size_t i = 0; i < count && !pending->finished; ++i) {
      std::string name = ListQueryName(client, options_.lists[i].zone);
      if (const ListAnswer* cached = CacheGet(name, now)) {
        stats_cache_hits_.fetch_add(1, std::memory_order_relaxed);
        Apply(*pending, i, *cached);
        continue;
      }
      // Register before querying: c-ares may call back from inside ares_query.
      auto [it, is_new] = in_flight_.try_emplace(name);
      it->second.push_back({pending, i});
      if (is_new) {
        stats_queries_.fetch_add(1, std::memory_order_relaxed);
        ares_query(channel_, name.c_str(), kClassIn, kTypeA, &Impl::OnAres,
                   new QueryArg{this, name});
      }
    }
    if (pending->remaining == 0) {
      Finish(*pending);
      return;
    }
    if (pending->finished) return;
    pending->deadline.expires_after(options_.timeout);
    pending->deadline.async_wait([self = shared_from_this(), pending](std::error_code ec) {
      if (ec || pending->finished) return;
      self->FailWaiting(*pending, "timeout");
      self->Finish(*pending);
    });
    ArmServiceTimer();
  }

  void FailWaiting(Pending& pending, const char* reason) {
    for (size_t i = 0; i < pending.states.size(); ++i) {
      if (pending.states[i] != ListState::kWaiting) continue;
      pending.states[i] = ListState::kFailed;
      pending.details[i] = reason;
      --pending.remaining;
      stats_failures_.fetch_add(1, std::memory_order_relaxed);
      if (std::string_view(reason) == "timeout") {
        stats_timeouts_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  void Apply(Pending& pending, size_t index, const ListAnswer& answer) {
    if (pending.finished || pending.states[index] != ListState::kWaiting) return;
    const DnsList& list = options_.lists[index];
    switch (answer.kind) {
      case ListAnswer::Kind::kListed: {
        pending.states[index] = ListState::kNotListed;
        for (const auto& address : answer.addresses) {
          if (list.Accepts(address)) {
            pending.states[index] = ListState::kListed;
            pending.details[index] = AddressText(address);
            break;
          }
        }
        break;
      }
      case ListAnswer::Kind::kNotListed:
        pending.states[index] = ListState::kNotListed;
        break;
      case ListAnswer::Kind::kFailed:
        pending.states[index] = ListState::kFailed;
        pending.details[index] = answer.error;
        stats_failures_.fetch_add(1, std::memory_order_relaxed);
        if (answer.error == "timeout") stats_timeouts_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    if (--pending.remaining == 0) Finish(pending);
  }

  void Finish(Pending& pending) {
    if (pending.finished) return;
    pending.finished = true;
    pending.deadline.cancel();
    ListVerdict verdict;
    for (size_t i = 0; i < pending.states.size(); ++i) {
      const DnsList& list = options_.lists[i];
      switch (pending.states[i]) {
        case ListState::kListed:
          (list.kind == ListKind::kAllow ? verdict.dnswl : verdict.dnsbl)
              .push_back({list.zone, pending.details[i]});
          break;
        case ListState::kFailed:
        case ListState::kWaiting:
          verdict.failures.push_back(list.zone + ": " + pending.details[i]);
          break;
        case ListState::kNotListed:
          break;
      }
    }
    ListCallback done = std::move(pending.done);
    if (done) done(std::move(verdict));
  }

  static ListAnswer Interpret(int status, const unsigned char* abuf, int alen,
                              Seconds default_negative_ttl) {
    const bool has_message = abuf != nullptr && alen > 0;
    switch (status) {
      case ARES_SUCCESS:
      case ARES_ENODATA:
      case ARES_ENOTFOUND:
        if (has_message) {
          return ParseListResponse(std::span<const uint8_t>(abuf, static_cast<size_t>(alen)),
                                   default_negative_ttl);
        }
        if (status == ARES_SUCCESS) return Failed("malformed answer");
        {
          ListAnswer answer;
          answer.kind = ListAnswer::Kind::kNotListed;
          answer.ttl = default_negative_ttl;
          return answer;
        }
      case ARES_ETIMEOUT:
        return Failed("timeout");
      case ARES_ESERVFAIL:
        return Failed("SERVFAIL");
      case ARES_EREFUSED:
        return Failed("REFUSED");
      case ARES_ENOTIMP:
        return Failed("NOTIMP");
      case ARES_EFORMERR:
        return Failed("FORMERR");
      case ARES_EBADRESP:
        return Failed("malformed answer");
      case ARES_ECONNREFUSED:
        return Failed("connection refused");
      default:
        return Failed(ares_strerror(status));
    }
  }

  // c-ares' query callback. Runs inside an ares_* call made on the strand.
  static void OnAres(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<QueryArg> query(static_cast<QueryArg*>(arg));
    // The channel is being destroyed (Close or ~Impl): nobody waits for this answer.
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
    Impl* impl = query->impl;
    impl->OnAnswer(query->name, Interpret(status, abuf, alen, impl->options_.default_negative_ttl));
  }

  void OnAnswer(const std::string& name, const ListAnswer& answer) {
    // Cache even if every waiter has timed out: a late answer still saves the next query.
    if (answer.kind != ListAnswer::Kind::kFailed && answer.ttl > Seconds(0)) {
      CachePut(name, answer, clock_.Now() + std::min(answer.ttl, options_.max_cache_ttl));
    }
    auto it = in_flight_.find(name);
    if (it == in_flight_.end()) return;
    std::vector<Waiter> waiters = std::move(it->second);
    in_flight_.erase(it);
    for (Waiter& waiter : waiters) Apply(*waiter.pending, waiter.list_index, answer);
  }

  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->SocketState(fd, readable != 0, writable != 0);
  }

  void SocketState(ares_socket_t fd, bool readable, bool writable) {
    auto it = watches_.find(fd);
    if (!readable && !writable) {
      if (it != watches_.end()) {
        // c-ares closes the fd right after this: stop watching it first, and never close
        // it ourselves (release, not close).
        it->second->closed = true;
        it->second->descriptor.release();
        watches_.erase(it);
      }
      return;
    }
    if (it == watches_.end()) {
      auto watch = std::make_shared<Watch>(io_, fd);
      std::error_code ec;
      watch->descriptor.assign(fd, ec);
      if (ec) return;  // cannot watch: the lookup deadline answers for it
      it = watches_.emplace(fd, std::move(watch)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    Arm(it->second);
  }

  void Arm(const std::shared_ptr<Watch>& watch) {
    if (watch->want_read && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_read,
          asio::bind_executor(strand_, [self = shared_from_this(), watch](std::error_code ec) {
            watch->reading = false;
            if (ec || watch->closed || self->channel_ == nullptr || !watch->want_read) return;
            ares_process_fd(self->channel_, watch->fd, ARES_SOCKET_BAD);
            if (!watch->closed) self->Arm(watch);
            self->ArmServiceTimer();
          }));
    }
    if (watch->want_write && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_write,
          asio::bind_executor(strand_, [self = shared_from_this(), watch](std::error_code ec) {
            watch->writing = false;
            if (ec || watch->closed || self->channel_ == nullptr || !watch->want_write) return;
            ares_process_fd(self->channel_, ARES_SOCKET_BAD, watch->fd);
            if (!watch->closed) self->Arm(watch);
            self->ArmServiceTimer();
          }));
    }
  }

  // c-ares keeps its own retransmission and timeout schedule; wake it when it is due.
  void ArmServiceTimer() {
    if (channel_ == nullptr) return;
    timeval storage{};
    timeval* due = ares_timeout(channel_, nullptr, &storage);
    if (due == nullptr) {
      service_timer_.cancel();
      return;
    }
    service_timer_.expires_after(std::chrono::seconds(due->tv_sec) +
                                 std::chrono::microseconds(due->tv_usec));
    service_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->channel_ == nullptr) return;
      ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->ArmServiceTimer();
    });
  }

  const ListAnswer* CacheGet(const std::string& name, UnixTime now) {
    auto it = cache_index_.find(name);
    if (it == cache_index_.end()) return nullptr;
    if (it->second->expires <= now) {
      lru_.erase(it->second);
      cache_index_.erase(it);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->answer;
  }

  void CachePut(const std::string& name, const ListAnswer& answer, UnixTime expires) {
    if (options_.cache_entries == 0) return;
    auto it = cache_index_.find(name);
    if (it != cache_index_.end()) {
      it->second->answer = answer;
      it->second->expires = expires;
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    lru_.push_front({name, answer, expires});
    cache_index_.emplace(name, lru_.begin());
    while (lru_.size() > options_.cache_entries) {
      cache_index_.erase(lru_.back().name);
      lru_.pop_back();
    }
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  const DnsListOptions options_;
  const Clock& clock_;
  ares_channel channel_ = nullptr;
  bool closed_ = false;
  asio::steady_timer service_timer_;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  std::unordered_map<std::string, std::vector<Waiter>> in_flight_;
  std::list<CacheEntry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<CacheEntry>::iterator> cache_index_;

  std::atomic<uint64_t> stats_lookups_{0};
  std::atomic<uint64_t> stats_cache_hits_{0};
  std::atomic<uint64_t> stats_queries_{0};
  std::atomic<uint64_t> stats_failures_{0};
  std::atomic<uint64_t> stats_timeouts_{0};
};

Result<std::unique_ptr<DnsListChecker>> DnsListChecker::Create(asio::io_context& io,
                                                               DnsListOptions options,
                                                               const Clock& clock) {
  if (options.timeout <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument("dns-timeout must be positive");
  }
  auto impl = std::make_shared<Impl>(io, std::move(options), clock);
  Status status = impl->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<DnsListChecker>(new DnsListChecker(std::move(impl)));
}

DnsListChecker::DnsListChecker(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsListChecker::~DnsListChecker() {
  asio::post(impl_->strand(), [impl = impl_] { impl->Close(); });
}

void DnsListChecker::Lookup(const policy::IpAddress& client, ListCallback done) {
  impl_->Lookup(client, std::move(done));
}

DnsListStats DnsListChecker::Stats() const { return impl_->Stats(); }

}  // namespace greylight::reputation
