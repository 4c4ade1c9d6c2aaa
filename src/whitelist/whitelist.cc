#include "whitelist/whitelist.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
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
#include "whitelist/entries.h"
#include "whitelist/network_index.h"
#include "whitelist/regex_entry.h"

namespace greylight::whitelist {
namespace {

using policy::IpAddress;
using policy::WhitelistHit;

struct EntryInfo {
  std::string source;  // "<file>:<line>"
  std::string text;    // the entry after comment stripping and trimming
};

// Lowercased keys and their entries, looked up by string_view without building a
// std::string. Lookups try every dot-suffix of a name, most of a length no key has: those
// are answered from the set of key lengths, without hashing.
class StringIndex {
 public:
  // The first entry of a key wins.
  void Add(std::string key, EntryId id) {
    if (key.size() < key_lengths_.size()) {
      key_lengths_.set(key.size());
    } else {
      long_keys_ = true;
    }
    entries_.try_emplace(std::move(key), id);
  }

  bool empty() const { return entries_.empty(); }

  // Lowers `best` to the entry of `key`, if it has one below.
  void Consider(std::string_view key, EntryId& best) const {
    if (key.size() < key_lengths_.size() ? !key_lengths_[key.size()] : !long_keys_) return;
    auto it = entries_.find(key);
    if (it != entries_.end()) best = std::min(best, it->second);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, EntryId, Hash, std::equal_to<>> entries_;
  std::bitset<256> key_lengths_;  // the lengths of the keys shorter than 256
  bool long_keys_ = false;        // any key of 256 or more
};

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
  StringIndex client_suffixes;  // lowercased host-name suffix
  RegexList client_regexes;
  NetworkIndex client_networks;

  std::vector<EntryInfo> recipient_entries;
  StringIndex recipient_addresses;  // lowercased "user@domain"
  StringIndex recipient_users;      // lowercased "user" of "user@"
  StringIndex recipient_domains;    // lowercased "domain"
  RegexList recipient_regexes;

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
      index.client_suffixes.Consider(rest, best);
      size_t dot = rest.find('.');
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
  }
  best = index.client_regexes.FirstMatch(client_name, lowered, best);
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
    index.recipient_addresses.Consider(view, best);
    index.recipient_users.Consider(view.substr(0, at), best);
    for (size_t plus = view.find('+'); plus != std::string_view::npos && plus + 1 < at;
         plus = view.find('+', plus + 1)) {
      std::string_view user = view.substr(0, plus);
      index.recipient_users.Consider(user, best);
      if (!index.recipient_addresses.empty()) {
        index.recipient_addresses.Consider(std::string(user).append(view.substr(at)), best);
      }
    }
  }
  // domain matches addresses ending in "@domain" or ".domain".
  for (size_t i = 0; !index.recipient_domains.empty() && i < view.size(); ++i) {
    if (view[i] == '@' || view[i] == '.') {
      index.recipient_domains.Consider(view.substr(i + 1), best);
    }
  }
  best = index.recipient_regexes.FirstMatch(recipient, view, best);
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
      index.client_regexes.Add(std::move(regex).value());
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
    if (std::all_of(entry.begin(), entry.end(),
                    [](char c) { return AsciiIsDigit(c) || c == '.'; })) {
      return fail("'" + std::string(entry) +
                  "' is not an IPv4 address or network (a.b.c.d, a.b.c.d/nn, a.b.c, a.b)");
    }
    if (entry.find('/') != std::string_view::npos) {
      return fail("'" + std::string(entry) +
                  "' is neither a /regex/, an IPv4 or IPv6 network nor a host name");
    }
    index.client_suffixes.Add(AsciiLowered(entry), id);
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
      index.recipient_regexes.Add(std::move(regex).value());
      return add_entry();
    }
    if (HasPerlSpace(entry)) return fail("doesn't look like an address");
    if (entry.front() == '/') return fail(kBadRegexShape);
    // postgrey: split(/\@/, $_, 2) into user and domain.
    std::string lowered = AsciiLowered(entry);
    size_t at = lowered.find('@');
    if (at == std::string::npos) {
      index.recipient_domains.Add(std::move(lowered), id);
    } else if (at + 1 < lowered.size()) {
      index.recipient_addresses.Add(std::move(lowered), id);
    } else {
      lowered.pop_back();
      index.recipient_users.Add(std::move(lowered), id);
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
