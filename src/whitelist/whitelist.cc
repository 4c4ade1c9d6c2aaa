#include "whitelist/whitelist.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fcntl.h>
#include <pcre2.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "util/ascii.h"

namespace greylight::whitelist {
namespace {

using policy::IpAddress;
using policy::WhitelistHit;

// Entries are numbered in file order (all client files, then separately all recipient
// files); the hit reported is the lowest-numbered matching entry, as postgrey returns
// the first match of its list.
using EntryId = uint32_t;
constexpr EntryId kNoEntry = std::numeric_limits<EntryId>::max();

// Addresses live in one 128-bit space, IPv4 a.b.c.d being ::a.b.c.d: that is how
// NetAddr::IP compares them, which gives postgrey's cross-family quirk for free.
__extension__ typedef unsigned __int128 Address128;
constexpr Address128 kAllOnes = ~Address128{0};
constexpr int kIpv4InIpv6PrefixOffset = 96;

Address128 ToAddress128(const IpAddress& address) {
  Address128 value = 0;
  for (int i = 0; i < address.bits() / 8; ++i) value = value << 8 | address.bytes[i];
  return value;
}

Address128 PrefixMask(int prefix_length) {
  return prefix_length == 0 ? 0 : kAllOnes << (128 - prefix_length);
}

struct EntryInfo {
  std::string source;  // "<file>:<line>"
  std::string text;    // the entry after comment stripping and trimming
};

// std::string keys looked up by string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, EntryId, StringHash, std::equal_to<>>;

void Consider(const StringIndex& index, std::string_view key, EntryId& best) {
  auto it = index.find(key);
  if (it != index.end()) best = std::min(best, it->second);
}

// Lowercases `text` into a per-thread buffer, valid until the next call on this thread:
// lookups run on every request, and names are usually too long for the small-string
// buffer, so this saves an allocation per lookup.
std::string_view ScratchLowered(std::string_view text) {
  thread_local std::string buffer;
  buffer.assign(text);
  for (char& c : buffer) c = AsciiLower(c);
  return buffer;
}

// Perl's \s on byte strings, which is what postgrey trims and splits on.
bool IsPerlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool HasPerlSpace(std::string_view text) {
  return std::any_of(text.begin(), text.end(), IsPerlSpace);
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// postgrey's `s/#.*$//; s/^\s+//; s/\s+$//`.
std::string_view CleanLine(std::string_view line) {
  line = line.substr(0, line.find('#'));
  while (!line.empty() && IsPerlSpace(line.front())) line.remove_prefix(1);
  while (!line.empty() && IsPerlSpace(line.back())) line.remove_suffix(1);
  return line;
}

// postgrey's `/^\/(\S+)\/$/`: the regex body, if the line is a /regex/ entry.
std::optional<std::string_view> RegexBody(std::string_view line) {
  if (line.size() < 3 || line.front() != '/' || line.back() != '/' || HasPerlSpace(line)) {
    return std::nullopt;
  }
  return line.substr(1, line.size() - 2);
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

using RegexCode = std::unique_ptr<pcre2_code, CodeDeleter>;

struct CompiledRegex {
  EntryId id;
  RegexCode code;
  bool jit;  // JIT-compiled: matched with pcre2_jit_match, which skips pcre2_match's checks
  // Lowercase text every match ends with (see RequiredSuffix); empty if none is known.
  std::string required_suffix;
};

// True if the character at `pos` is escaped: preceded by an odd run of backslashes.
bool Escaped(std::string_view body, size_t pos) {
  size_t backslashes = 0;
  while (pos > backslashes && body[pos - 1 - backslashes] == '\\') ++backslashes;
  return backslashes % 2 == 1;
}

// The literal text, lowercased, that ends every subject the case-insensitive `body` can
// match, or "" when the pattern does not pin one down. Almost every entry of postgrey's
// client list has this shape (/^mail\d+\.telekom\.de$/ ends with ".telekom.de"), and a
// suffix comparison rejects nearly every client name at a fraction of a regex call.
// Deliberately conservative: only patterns that end in an unescaped '$' (no subject has a
// newline: requests are split on them), without alternation, (*VERB)s, inline options other
// than (?:...), or escapes that spell a character by code (\x41, \101, \Q...\E); the literal
// run before '$' holds only plain characters and backslash-escaped punctuation, and stops
// at the first metacharacter, so a quantifier (which follows its atom) is never crossed.
std::string RequiredSuffix(std::string_view body) {
  if (body.size() < 2 || body.back() != '$' || Escaped(body, body.size() - 1)) return {};
  // Alternation, and (*VERB)s: (*ACCEPT) ends a match early, (*UTF) folds case beyond
  // ASCII, (*CR) and friends let '$' match before other line ends.
  if (body.find('|') != std::string_view::npos) return {};
  if (body.find("(*") != std::string_view::npos) return {};
  for (size_t at = body.find("(?"); at != std::string_view::npos; at = body.find("(?", at + 2)) {
    if (at + 2 >= body.size() || body[at + 2] != ':') return {};
  }
  for (size_t at = body.find('\\'); at != std::string_view::npos && at + 1 < body.size();
       at = body.find('\\', at + 2)) {
    if (std::string_view("xocNpPQEgku0123456789").find(body[at + 1]) != std::string_view::npos) {
      return {};
    }
  }
  auto plain = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("-_@%/=!~'\",;:<>&`#").find(c) != std::string_view::npos;
  };
  std::string suffix;
  size_t i = body.size() - 1;  // the '$'
  while (i > 0) {
    char c = body[i - 1];
    if (plain(c) && !Escaped(body, i - 1)) {
      suffix.push_back(AsciiLower(c));
      --i;
    } else if (std::ispunct(static_cast<unsigned char>(c)) && Escaped(body, i - 1)) {
      suffix.push_back(c);  // "\." is a literal '.'
      i -= 2;
    } else {
      break;
    }
  }
  std::reverse(suffix.begin(), suffix.end());
  return suffix;
}

// Compiles a postgrey /regex/ body: Perl syntax, case-insensitive (postgrey's qr{...}i),
// byte semantics (no UTF), JIT-compiled when the platform supports it.
Result<CompiledRegex> CompileRegex(EntryId id, std::string_view body) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  RegexCode code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(body.data()), body.size(),
                               PCRE2_CASELESS, &error_code, &error_offset, nullptr));
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return Status::InvalidArgument("invalid regex /" + std::string(body) +
                                   "/: " + reinterpret_cast<const char*>(message) + " at offset " +
                                   std::to_string(error_offset));
  }
  // Failure only means no JIT on this platform; pcre2_match then interprets.
  bool jit = pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE) == 0;
  return CompiledRegex{id, std::move(code), jit, RequiredSuffix(body)};
}

// The Whitelists object is shared by all threads, so match scratch space is per thread.
// One ovector pair suffices: we only ask whether there is a match (pcre2_match returns
// 0, still a match, when captures do not fit).
bool RegexMatches(const CompiledRegex& regex, std::string_view subject) {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> match_data(
      pcre2_match_data_create(1, nullptr));
  if (!match_data) return false;
  auto text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // A negative result other than "no match" (e.g. the match limit on a pathological
  // pattern) also counts as no match: whitelisting is never granted by an error.
  int result =
      regex.jit
          ? pcre2_jit_match(regex.code.get(), text, subject.size(), 0, 0, match_data.get(), nullptr)
          : pcre2_match(regex.code.get(), text, subject.size(), 0, 0, match_data.get(), nullptr);
  return result >= 0;
}

// `lowered` is `subject` in ASCII lowercase, for the required-suffix shortcut; PCRE2 gets
// the subject as sent.
EntryId FirstRegexMatch(const std::vector<CompiledRegex>& regexes, std::string_view subject,
                        std::string_view lowered, EntryId best) {
  for (const CompiledRegex& regex : regexes) {
    if (regex.id >= best) break;  // sorted by id: nothing earlier can follow
    if (!lowered.ends_with(regex.required_suffix)) continue;
    if (RegexMatches(regex, subject)) return regex.id;
  }
  return best;
}

// All client networks flattened into disjoint address intervals, each owned by the
// earliest entry covering it, so a lookup is one binary search whatever the number and
// mix of prefix lengths.
class NetworkIndex {
 public:
  void Add(Address128 first, Address128 last, EntryId id) { ranges_.push_back({first, last, id}); }

  // Sweeps the interval end points in order, keeping the set of entries covering the
  // current point; its minimum owns the segment that starts there.
  void Finish() {
    struct Event {
      Address128 at;
      bool opens;
      EntryId id;
    };
    std::vector<Event> events;
    events.reserve(ranges_.size() * 2);
    for (const Range& range : ranges_) {
      events.push_back({range.first, true, range.id});
      if (range.last != kAllOnes) events.push_back({range.last + 1, false, range.id});
    }
    std::sort(events.begin(), events.end(),
              [](const Event& a, const Event& b) { return a.at < b.at; });
    std::set<EntryId> active;
    starts_.assign(1, 0);
    owners_.assign(1, kNoEntry);
    for (size_t i = 0; i < events.size();) {
      Address128 at = events[i].at;
      for (; i < events.size() && events[i].at == at; ++i) {
        if (events[i].opens) {
          active.insert(events[i].id);
        } else {
          active.erase(events[i].id);
        }
      }
      EntryId owner = active.empty() ? kNoEntry : *active.begin();
      if (owner == owners_.back()) continue;  // the current segment goes on
      if (starts_.back() == at) {
        owners_.back() = owner;  // only at address 0, where the initial segment starts
      } else {
        starts_.push_back(at);
        owners_.push_back(owner);
      }
    }
    ranges_.clear();
    ranges_.shrink_to_fit();
  }

  // REQUIRES: Finish() was called.
  EntryId Find(Address128 address) const {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), address);
    return owners_[static_cast<size_t>(it - starts_.begin()) - 1];
  }

 private:
  struct Range {
    Address128 first;
    Address128 last;
    EntryId id;
  };
  std::vector<Range> ranges_;          // until Finish()
  std::vector<Address128> starts_{0};  // sorted segment starts, starts_[0] == 0
  std::vector<EntryId> owners_{kNoEntry};
};

std::optional<int> ParseSmallDecimal(std::string_view digits) {
  if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    return std::nullopt;
  }
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

// Splits at '.', true if there are exactly `count` groups of 1-3 ASCII digits
// (postgrey's \d{1,3} groups).
bool IsDottedDigits(std::string_view text, int count, std::vector<std::string_view>& groups) {
  groups.clear();
  while (true) {
    size_t dot = text.find('.');
    std::string_view group = text.substr(0, dot);
    if (group.empty() || group.size() > 3 || !std::all_of(group.begin(), group.end(), IsDigit)) {
      return false;
    }
    groups.push_back(group);
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  return static_cast<int>(groups.size()) == count;
}

struct Network {
  Address128 first;
  Address128 last;
};

Network MakeNetwork(Address128 address, int prefix_length) {
  Address128 mask = PrefixMask(prefix_length);
  return {address & mask, (address & mask) | ~mask};
}

// The IPv4 forms postgrey recognises: a.b.c.d, a.b.c.d/nn, a.b.c (/24) and a.b (/16,
// where postgrey makes a /24). nullopt if `entry` has none of these shapes.
std::optional<Result<Network>> ParseIpv4Entry(std::string_view entry) {
  std::string_view address_text = entry;
  std::optional<int> prefix_length;
  size_t slash = entry.find('/');
  std::vector<std::string_view> groups;
  if (slash != std::string_view::npos) {
    std::string_view length_text = entry.substr(slash + 1);
    address_text = entry.substr(0, slash);
    if (length_text.empty() || length_text.size() > 2 || !IsDottedDigits(address_text, 4, groups)) {
      return std::nullopt;
    }
    prefix_length = ParseSmallDecimal(length_text);
    if (!prefix_length) return std::nullopt;
  } else if (IsDottedDigits(entry, 4, groups)) {
    prefix_length = 32;
  } else if (IsDottedDigits(entry, 3, groups)) {
    prefix_length = 24;
  } else if (IsDottedDigits(entry, 2, groups)) {
    prefix_length = 16;  // FIX: postgrey documents /16 but builds a /24
  } else {
    return std::nullopt;
  }
  uint32_t value = 0;
  for (std::string_view group : groups) {
    if (group.size() > 1 && group.front() == '0') {
      // NetAddr::IP reads 010 as octal 8, most readers expect 10: refuse to guess.
      return Result<Network>(Status::InvalidArgument(
          "leading zero in IPv4 address '" + std::string(address_text) +
          "' is ambiguous (postgrey reads such octets as octal); write it without leading zeros"));
    }
    int octet = *ParseSmallDecimal(group);
    if (octet > 255) {
      return Result<Network>(
          Status::InvalidArgument("invalid IPv4 address '" + std::string(address_text) + "'"));
    }
    value = value << 8 | static_cast<uint32_t>(octet);
  }
  value <<= 8 * (4 - groups.size());
  if (*prefix_length > 32) {
    return Result<Network>(Status::InvalidArgument(
        "invalid IPv4 prefix length /" + std::to_string(*prefix_length) + " (must be 0-32)"));
  }
  return Result<Network>(MakeNetwork(value, kIpv4InIpv6PrefixOffset + *prefix_length));
}

// postgrey hands anything with two ':' to NetAddr::IP as an IPv6 address or network.
Result<Network> ParseIpv6Entry(std::string_view entry) {
  size_t slash = entry.find('/');
  int prefix_length = 128;
  if (slash != std::string_view::npos) {
    std::optional<int> parsed = ParseSmallDecimal(entry.substr(slash + 1));
    if (!parsed || *parsed > 128) {
      return Status::InvalidArgument("invalid IPv6 prefix length in '" + std::string(entry) +
                                     "' (must be /0-/128)");
    }
    prefix_length = *parsed;
  }
  std::optional<IpAddress> address = IpAddress::Parse(entry.substr(0, slash));
  if (!address || !address->is_v6) {
    return Status::InvalidArgument("invalid IPv6 address or network '" + std::string(entry) + "'");
  }
  return MakeNetwork(ToAddress128(*address), prefix_length);
}

// Calls `on_entry(line_number, entry)` for each non-empty line after postgrey's comment
// stripping and trimming.
template <typename OnEntry>
void ForEachEntry(std::string_view text, OnEntry on_entry) {
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t newline = text.find('\n');
    std::string_view entry = CleanLine(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (!entry.empty()) on_entry(line_number, entry);
  }
}

std::string LineError(std::string_view source, int line_number, std::string_view reason) {
  return std::string(source) + " line " + std::to_string(line_number) + ": " + std::string(reason);
}

constexpr std::string_view kBadRegexShape =
    "a /regex/ entry must start and end with '/' and have a non-empty body";

// Reads a whole file. Returns 0 or the errno of the failed open/read.
int ReadWholeFile(const std::string& path, std::string& contents) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  contents.clear();
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return error;
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return 0;
}

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

}  // namespace

struct Whitelists::Index {
  std::vector<EntryInfo> client_entries;
  StringIndex client_suffixes;                // lowercased host-name suffix
  std::vector<CompiledRegex> client_regexes;  // in id order
  NetworkIndex client_networks;

  std::vector<EntryInfo> recipient_entries;
  StringIndex recipient_addresses;  // lowercased "user@domain"
  StringIndex recipient_users;      // lowercased "user" of "user@"
  StringIndex recipient_domains;    // lowercased "domain"
  std::vector<CompiledRegex> recipient_regexes;

  WhitelistHit ClientHit(EntryId id) const {
    return {client_entries[id].source, client_entries[id].text};
  }
  WhitelistHit RecipientHit(EntryId id) const {
    return {recipient_entries[id].source, recipient_entries[id].text};
  }
};

WhitelistFile FileFromPath(std::string path) {
  bool missing_ok = std::string_view(path).ends_with(".local");
  return {std::move(path), missing_ok};
}

WhitelistFiles ResolveWhitelistFiles(std::span<const std::string> client_files,
                                     std::span<const std::string> recipient_files,
                                     const DefaultDirs& dirs) {
  auto resolve = [&dirs](std::span<const std::string> given, const std::string& name) {
    std::vector<WhitelistFile> files;
    if (!given.empty()) {
      for (const std::string& path : given) files.push_back(FileFromPath(path));
      return files;
    }
    std::error_code ignored;
    std::string own = dirs.greylight + "/" + name;
    std::string base = std::filesystem::exists(own, ignored) ? own : dirs.postgrey + "/" + name;
    files.push_back(FileFromPath(base));
    files.push_back(FileFromPath(base + ".local"));
    return files;
  };
  return {resolve(client_files, "whitelist_clients"),
          resolve(recipient_files, "whitelist_recipients")};
}

Whitelists::Whitelists() : index_(std::make_unique<Index>()) {}
Whitelists::~Whitelists() = default;

std::shared_ptr<const Whitelists> Whitelists::Empty() {
  static const std::shared_ptr<const Whitelists> kEmpty = [] {
    WhitelistBuilder builder;
    return std::move(builder.Build().value());
  }();
  return kEmpty;
}

Result<std::shared_ptr<const Whitelists>> Whitelists::Load(const WhitelistFiles& files) {
  WhitelistBuilder builder;
  std::string contents;
  auto read = [&](const WhitelistFile& file) -> bool {
    int error = ReadWholeFile(file.path, contents);
    if (error == 0) return true;
    if (error == ENOENT || error == ENOTDIR) {
      // postgrey: "do not warn about .local file: maybe the user just doesn't have one".
      if (!file.missing_ok) builder.AddWarning("can't open " + file.path + ": " + ErrnoText(error));
    } else {
      // A file that is there but unreadable is a mistake to fix, not an empty list.
      builder.AddError("can't read " + file.path + ": " + ErrnoText(error));
    }
    return false;
  };
  for (const WhitelistFile& file : files.clients) {
    if (read(file)) builder.AddClientText(file.path, contents);
  }
  for (const WhitelistFile& file : files.recipients) {
    if (read(file)) builder.AddRecipientText(file.path, contents);
  }
  return builder.Build();
}

std::optional<WhitelistHit> Whitelists::MatchClient(std::string_view client_name,
                                                    const IpAddress& address) const {
  const Index& index = *index_;
  // Name patterns: an entry E matches when the name equals E or ends in "." + E, i.e.
  // when E is the whole name or what follows one of its dots.
  EntryId best = kNoEntry;
  const std::string_view lowered = ScratchLowered(client_name);
  if (!index.client_suffixes.empty()) {
    std::string_view rest = lowered;
    while (true) {
      Consider(index.client_suffixes, rest, best);
      size_t dot = rest.find('.');
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
  }
  best = FirstRegexMatch(index.client_regexes, client_name, lowered, best);
  if (best != kNoEntry) return index.ClientHit(best);

  EntryId network = index.client_networks.Find(ToAddress128(address));
  if (network != kNoEntry) return index.ClientHit(network);
  return std::nullopt;
}

std::optional<WhitelistHit> Whitelists::MatchRecipient(std::string_view recipient) const {
  const Index& index = *index_;
  std::string_view view = ScratchLowered(recipient);
  EntryId best = kNoEntry;

  // user@domain matches "user@domain" and "user+ext@domain"; user@ matches "user@" and
  // "user+ext@" at any domain. Entries' users contain no '@', so the '@' that follows
  // user (or +ext, which has no '@' either) is the address's first one.
  size_t at = view.find('@');
  if (at != std::string_view::npos &&
      !(index.recipient_addresses.empty() && index.recipient_users.empty())) {
    Consider(index.recipient_addresses, view, best);
    Consider(index.recipient_users, view.substr(0, at), best);
    for (size_t plus = view.find('+'); plus != std::string_view::npos && plus + 1 < at;
         plus = view.find('+', plus + 1)) {
      std::string_view user = view.substr(0, plus);
      Consider(index.recipient_users, user, best);
      if (!index.recipient_addresses.empty()) {
        Consider(index.recipient_addresses, std::string(user).append(view.substr(at)), best);
      }
    }
  }
  // domain matches addresses ending in "@domain" or ".domain".
  for (size_t i = 0; !index.recipient_domains.empty() && i < view.size(); ++i) {
    if (view[i] == '@' || view[i] == '.') {
      Consider(index.recipient_domains, view.substr(i + 1), best);
    }
  }
  best = FirstRegexMatch(index.recipient_regexes, recipient, view, best);
  if (best != kNoEntry) return index.RecipientHit(best);
  return std::nullopt;
}

size_t Whitelists::client_entry_count() const { return index_->client_entries.size(); }
size_t Whitelists::recipient_entry_count() const { return index_->recipient_entries.size(); }

WhitelistBuilder::WhitelistBuilder() : index_(std::make_unique<Whitelists::Index>()) {}
WhitelistBuilder::~WhitelistBuilder() = default;

void WhitelistBuilder::AddWarning(std::string message) { warnings_.push_back(std::move(message)); }
void WhitelistBuilder::AddError(std::string message) { errors_.push_back(std::move(message)); }

// The client line forms, tried in postgrey's order (compat spec 6.2), with the cases
// postgrey silently drops or turns into dead host-name entries reported as errors.
void WhitelistBuilder::AddClientText(std::string_view source, std::string_view text) {
  Whitelists::Index& index = *index_;
  ForEachEntry(text, [&](int line_number, std::string_view entry) {
    auto fail = [&](std::string_view reason) {
      errors_.push_back(LineError(source, line_number, reason));
    };
    auto id = static_cast<EntryId>(index.client_entries.size());
    auto add_entry = [&] {
      index.client_entries.push_back(
          {std::string(source) + ":" + std::to_string(line_number), std::string(entry)});
    };
    auto add_network = [&](const Network& network) {
      index.client_networks.Add(network.first, network.last, id);
      add_entry();
    };

    if (std::optional<std::string_view> body = RegexBody(entry)) {
      Result<CompiledRegex> regex = CompileRegex(id, *body);
      if (!regex.ok()) return fail(regex.status().message());
      index.client_regexes.push_back(std::move(regex).value());
      return add_entry();
    }
    if (std::optional<Result<Network>> network = ParseIpv4Entry(entry)) {
      if (!network->ok()) return fail(network->status().message());
      return add_network(network->value());
    }
    if (std::count(entry.begin(), entry.end(), ':') >= 2) {
      Result<Network> network = ParseIpv6Entry(entry);
      if (!network.ok()) return fail(network.status().message());
      return add_network(network.value());
    }
    if (HasPerlSpace(entry)) return fail("doesn't look like a hostname");
    if (entry.front() == '/') return fail(kBadRegexShape);
    // postgrey would take these for host names, which can never match a client_name.
    if (std::all_of(entry.begin(), entry.end(), [](char c) { return IsDigit(c) || c == '.'; })) {
      return fail("'" + std::string(entry) +
                  "' is not an IPv4 address or network (a.b.c.d, a.b.c.d/nn, a.b.c, a.b)");
    }
    if (entry.find('/') != std::string_view::npos) {
      return fail("'" + std::string(entry) +
                  "' is neither a /regex/, an IPv4 or IPv6 network nor a host name");
    }
    index.client_suffixes.try_emplace(AsciiLowered(entry), id);
    add_entry();
  });
}

void WhitelistBuilder::AddRecipientText(std::string_view source, std::string_view text) {
  Whitelists::Index& index = *index_;
  ForEachEntry(text, [&](int line_number, std::string_view entry) {
    auto fail = [&](std::string_view reason) {
      errors_.push_back(LineError(source, line_number, reason));
    };
    auto id = static_cast<EntryId>(index.recipient_entries.size());
    auto add_entry = [&] {
      index.recipient_entries.push_back(
          {std::string(source) + ":" + std::to_string(line_number), std::string(entry)});
    };

    if (std::optional<std::string_view> body = RegexBody(entry)) {
      Result<CompiledRegex> regex = CompileRegex(id, *body);
      if (!regex.ok()) return fail(regex.status().message());
      index.recipient_regexes.push_back(std::move(regex).value());
      return add_entry();
    }
    if (HasPerlSpace(entry)) return fail("doesn't look like an address");
    if (entry.front() == '/') return fail(kBadRegexShape);
    // postgrey: split(/\@/, $_, 2) into user and domain.
    std::string lowered = AsciiLowered(entry);
    size_t at = lowered.find('@');
    if (at == std::string::npos) {
      index.recipient_domains.try_emplace(std::move(lowered), id);
    } else if (at + 1 < lowered.size()) {
      index.recipient_addresses.try_emplace(std::move(lowered), id);
    } else {
      lowered.pop_back();
      index.recipient_users.try_emplace(std::move(lowered), id);
    }
    add_entry();
  });
}

Result<std::shared_ptr<const Whitelists>> WhitelistBuilder::Build() {
  std::vector<std::string> errors = std::move(errors_);
  std::unique_ptr<Whitelists::Index> index = std::move(index_);
  std::vector<std::string> warnings = std::move(warnings_);
  index_ = std::make_unique<Whitelists::Index>();
  errors_.clear();
  warnings_.clear();
  if (!errors.empty()) {
    std::string message = errors.front();
    if (errors.size() > 1) {
      message += " (and " + std::to_string(errors.size() - 1) + " more error" +
                 (errors.size() > 2 ? "s" : "") + ")";
    }
    return Status::InvalidArgument(std::move(message));
  }
  index->client_networks.Finish();
  std::shared_ptr<Whitelists> lists(new Whitelists());
  lists->index_ = std::move(index);
  lists->warnings_ = std::move(warnings);
  return std::shared_ptr<const Whitelists>(std::move(lists));
}

}  // namespace greylight::whitelist
