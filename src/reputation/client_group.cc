#include "reputation/client_group.h"

#include <libpsl.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <vector>

#include "util/ascii.h"
#include "util/sha1.h"

namespace greylight::reputation {
namespace {

constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;
// Runs of this many nibbles or more that spell the client's IPv6 address make a name
// generic. 16 nibbles is a whole interface identifier or a /64 prefix: far too long to
// occur by chance in a provider's naming scheme.
constexpr size_t kMinEmbeddedNibbles = 16;
// Consecutive numbers that spell the address: three IPv4 octets or IPv6 groups.
constexpr size_t kMinEmbeddedParts = 3;

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }
bool IsSeparator(char c) { return c == '.' || c == '-' || c == '_'; }

// The name as the keys use it: ASCII-lowercased, one trailing dot removed. nullopt for
// anything that is not a plausible host name: Postfix only reports names it resolved
// forwards and backwards, so this is a guard against odd input, not a full RFC check.
// An all-digit last label is rejected so an address literal never reaches the PSL (which
// would call 3.4 the registrable domain of 1.2.3.4).
std::optional<std::string> NormaliseName(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxNameLength) return std::nullopt;
  std::string lowered;
  lowered.reserve(name.size());
  size_t label_length = 0;
  size_t labels = 1;
  for (char c : name) {
    if (c == '.') {
      if (label_length == 0) return std::nullopt;
      label_length = 0;
      ++labels;
      lowered.push_back(c);
      continue;
    }
    c = AsciiLower(c);
    if (!IsLower(c) && !IsDigit(c) && c != '-' && c != '_') return std::nullopt;
    if (++label_length > kMaxLabelLength) return std::nullopt;
    lowered.push_back(c);
  }
  if (label_length == 0 || labels < 2) return std::nullopt;
  std::string_view last = std::string_view(lowered).substr(lowered.rfind('.') + 1);
  if (std::all_of(last.begin(), last.end(), IsDigit)) return std::nullopt;
  return lowered;
}

// A maximal run of characters of one class in the examined part of a name.
struct Token {
  size_t begin;
  size_t end;
  std::string_view text;
};

template <typename Pred>
std::vector<Token> Tokens(std::string_view text, Pred in_token) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    if (!in_token(text[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && in_token(text[end])) ++end;
    tokens.push_back({i, end, text.substr(i, end - i)});
    i = end;
  }
  return tokens;
}

// The numeric value of a short decimal or hex token; nullopt if it is too long to be an
// octet or a 16-bit group (leading zeros are allowed: "005", "0db8").
std::optional<unsigned> TokenValue(std::string_view token, int base, size_t max_digits) {
  if (token.empty() || token.size() > max_digits) return std::nullopt;
  unsigned value = 0;
  for (char c : token) {
    unsigned digit =
        IsDigit(c) ? static_cast<unsigned>(c - '0') : static_cast<unsigned>(c - 'a' + 10);
    value = value * static_cast<unsigned>(base) + digit;
  }
  return value;
}

// True if `tokens` holds a run of kMinEmbeddedParts or more consecutive tokens, each
// separated from the next by exactly one separator character, whose values are
// consecutive elements of `parts` read forwards or backwards ("203-0-113" and
// "113.0.203" for 203.0.113.5). Returns the matched text in `evidence`.
bool HasConsecutiveParts(std::string_view text, const std::vector<Token>& tokens,
                         const std::vector<std::optional<unsigned>>& values,
                         const std::vector<unsigned>& parts, std::string* evidence) {
  const size_t n = parts.size();
  for (size_t start = 0; start < tokens.size(); ++start) {
    for (int direction : {1, -1}) {
      for (size_t first = 0; first < n; ++first) {
        // Walk tokens from `start` and parts from `first` in `direction`.
        size_t matched = 0;
        size_t t = start;
        long long p = static_cast<long long>(first);
        while (t < tokens.size() && p >= 0 && p < static_cast<long long>(n) && values[t] &&
               *values[t] == parts[static_cast<size_t>(p)]) {
          ++matched;
          if (t + 1 >= tokens.size()) break;
          const size_t gap_begin = tokens[t].end;
          const size_t gap_end = tokens[t + 1].begin;
          if (gap_end - gap_begin != 1 || !IsSeparator(text[gap_begin])) break;
          ++t;
          p += direction;
        }
        if (matched >= kMinEmbeddedParts) {
          const size_t end_token = start + matched - 1;
          *evidence = std::string(
              text.substr(tokens[start].begin, tokens[end_token].end - tokens[start].begin));
          return true;
        }
      }
    }
  }
  return false;
}

bool ContainsBounded(std::string_view text, std::string_view needle, bool (*is_part)(char)) {
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    const bool before_ok = at == 0 || !is_part(text[at - 1]);
    const size_t after = at + needle.size();
    const bool after_ok = after == text.size() || !is_part(text[after]);
    if (before_ok && after_ok) return true;
  }
  return false;
}

bool EmbedsIpv4(const policy::IpAddress& address, std::string_view text, std::string* evidence) {
  const auto& b = address.bytes;
  std::vector<Token> tokens = Tokens(text, IsDigit);
  std::vector<std::optional<unsigned>> values;
  for (const Token& token : tokens) values.push_back(TokenValue(token.text, 10, 3));
  std::vector<unsigned> octets{b[0], b[1], b[2], b[3]};
  if (HasConsecutiveParts(text, tokens, values, octets, evidence)) return true;

  // One number for the whole address: zero-padded decimal octets, hex octets, or the
  // 32-bit integer, each forwards or with the octets reversed.
  char buffer[32];
  for (bool reversed : {false, true}) {
    unsigned o[4] = {b[0], b[1], b[2], b[3]};
    if (reversed) std::reverse(std::begin(o), std::end(o));
    std::snprintf(buffer, sizeof buffer, "%03u%03u%03u%03u", o[0], o[1], o[2], o[3]);
    if (ContainsBounded(text, buffer, IsDigit)) {
      *evidence = buffer;
      return true;
    }
    std::snprintf(buffer, sizeof buffer, "%02x%02x%02x%02x", o[0], o[1], o[2], o[3]);
    if (text.find(buffer) != std::string_view::npos) {
      *evidence = buffer;
      return true;
    }
    unsigned long value =
        (static_cast<unsigned long>(o[0]) << 24) | (o[1] << 16) | (o[2] << 8) | o[3];
    std::snprintf(buffer, sizeof buffer, "%lu", value);
    if (value >= 1000000 && ContainsBounded(text, buffer, IsDigit)) {
      *evidence = buffer;
      return true;
    }
  }
  return false;
}

bool EmbedsIpv6(const policy::IpAddress& address, std::string_view text, std::string* evidence) {
  const auto& b = address.bytes;
  std::vector<Token> tokens = Tokens(text, IsHex);
  std::vector<std::optional<unsigned>> values;
  for (const Token& token : tokens) values.push_back(TokenValue(token.text, 16, 4));
  std::vector<unsigned> groups;
  for (size_t i = 0; i < 16; i += 2) groups.push_back((unsigned{b[i]} << 8) | b[i + 1]);
  if (HasConsecutiveParts(text, tokens, values, groups, evidence)) return true;

  // Nibbles in a row, separators dropped: "20010db8...", "5.0.0.0.4.0...." (ip6.arpa).
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string forward;
  for (uint8_t byte : b) {
    forward.push_back(kHexDigits[byte >> 4]);
    forward.push_back(kHexDigits[byte & 0xf]);
  }
  std::string backward(forward.rbegin(), forward.rend());
  std::string compact;
  auto check = [&]() {
    if (compact.size() < kMinEmbeddedNibbles) return false;
    for (const std::string* nibbles : {&forward, &backward}) {
      for (size_t i = 0; i + kMinEmbeddedNibbles <= nibbles->size(); ++i) {
        std::string_view window = std::string_view(*nibbles).substr(i, kMinEmbeddedNibbles);
        if (compact.find(window) != std::string::npos) {
          *evidence = std::string(window);
          return true;
        }
      }
    }
    return false;
  };
  for (char c : text) {
    if (IsHex(c)) {
      compact.push_back(c);
    } else if (!IsSeparator(c)) {
      if (check()) return true;
      compact.clear();
    }
  }
  return check();
}

}  // namespace

Psl::Psl(psl_ctx_t* context, bool owned, std::string source)
    : context_(context), owned_(owned), source_(std::move(source)) {}

Psl::~Psl() {
  if (owned_) psl_free(context_);
}

Result<std::unique_ptr<const Psl>> Psl::LoadSystem() {
  // psl_latest(NULL) compares the distribution file (the publicsuffix package's DAFSA) with
  // the built-in list and returns the newer; it may return the built-in context itself,
  // which is static and must not be freed.
  const psl_ctx_t* builtin = psl_builtin();
  psl_ctx_t* latest = psl_latest(nullptr);
  if (latest != nullptr) {
    const bool is_builtin = latest == builtin;
    const char* dist = psl_dist_filename();
    std::string source = is_builtin
                             ? std::string("built-in")
                             : std::string(dist != nullptr && *dist != '\0' ? dist : "latest");
    return std::unique_ptr<const Psl>(new Psl(latest, !is_builtin, std::move(source)));
  }
  if (builtin != nullptr) {
    return std::unique_ptr<const Psl>(new Psl(const_cast<psl_ctx_t*>(builtin), false, "built-in"));
  }
  return Status::NotFound(
      "no public suffix list: libpsl has no built-in list and none was found at the "
      "distribution path (install the publicsuffix package)");
}

Result<std::unique_ptr<const Psl>> Psl::LoadFile(const std::string& path) {
  psl_ctx_t* context = psl_load_file(path.c_str());
  if (context == nullptr) return Status::IoError("can't load public suffix list " + path);
  return std::unique_ptr<const Psl>(new Psl(context, true, path));
}

std::string Psl::RegistrableDomain(std::string_view lowercase_name) const {
  std::string name(lowercase_name);  // NUL-terminated copy for the C API
  const char* domain = psl_registrable_domain(context_, name.c_str());
  return domain != nullptr ? std::string(domain) : std::string();
}

Result<LookupBy> ParseLookupBy(std::string_view text) {
  if (text == "subnet") return LookupBy::kSubnet;
  if (text == "host") return LookupBy::kHost;
  if (text == "domain") return LookupBy::kDomain;
  if (text == "smart") return LookupBy::kSmart;
  return Status::InvalidArgument("lookup-by must be subnet, host, domain or smart, not '" +
                                 std::string(text) + "'");
}

std::string_view LookupByName(LookupBy lookup_by) {
  switch (lookup_by) {
    case LookupBy::kSubnet:
      return "subnet";
    case LookupBy::kHost:
      return "host";
    case LookupBy::kDomain:
      return "domain";
    case LookupBy::kSmart:
      return "smart";
  }
  return "subnet";
}

std::string_view FallbackName(Fallback fallback) {
  switch (fallback) {
    case Fallback::kNone:
      return "";
    case Fallback::kUnverified:
      return "unverified name";
    case Fallback::kInvalidName:
      return "invalid name";
    case Fallback::kNoRegistrable:
      return "no registrable domain";
    case Fallback::kEmbedsAddress:
      return "name embeds address";
    case Fallback::kDynamicWord:
      return "dynamic-pool word";
  }
  return "";
}

bool LooksGeneric(const policy::IpAddress& address, std::string_view lowercase_name,
                  std::string_view registrable, Fallback* fallback, std::string* evidence) {
  // Only the provider's own labels say anything about the host: the registrable domain is
  // the company's name, where "dsl" or digits mean nothing about the pool.
  std::string_view host_part;
  if (lowercase_name.size() > registrable.size() && lowercase_name.ends_with(registrable)) {
    host_part = lowercase_name.substr(0, lowercase_name.size() - registrable.size());
  }
  if (host_part.empty()) return false;

  std::string found;
  if (address.is_v6 ? EmbedsIpv6(address, host_part, &found)
                    : EmbedsIpv4(address, host_part, &found)) {
    *fallback = Fallback::kEmbedsAddress;
    *evidence = std::move(found);
    return true;
  }
  for (const Token& word : Tokens(host_part, IsLower)) {
    for (std::string_view dynamic : kDynamicPoolWords) {
      if (word.text == dynamic) {
        *fallback = Fallback::kDynamicWord;
        *evidence = std::string(word.text);
        return true;
      }
    }
  }
  return false;
}

ClientGroup GroupClient(const policy::IpAddress& address, std::string_view client_name,
                        LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl) {
  ClientGroup group;
  auto address_keys = [&](const policy::KeyOptions& key_options) {
    group.key = policy::ClientNetwork(address, key_options);
    group.awl_key = policy::ClientKey(address, key_options);
    group.basis = key_options.lookup_by_host ? KeyBasis::kHost : KeyBasis::kSubnet;
  };
  if (lookup_by == LookupBy::kHost) {
    policy::KeyOptions host_options = options;
    host_options.lookup_by_host = true;
    address_keys(host_options);
    return group;
  }
  address_keys(options);
  if (lookup_by == LookupBy::kSubnet) return group;

  if (client_name.empty() || client_name == "unknown") {
    group.fallback = Fallback::kUnverified;
    return group;
  }
  std::optional<std::string> name = NormaliseName(client_name);
  if (!name) {
    group.fallback = Fallback::kInvalidName;
    return group;
  }
  std::string registrable = psl.RegistrableDomain(*name);
  if (registrable.empty()) {
    group.fallback = Fallback::kNoRegistrable;
    return group;
  }
  if (lookup_by == LookupBy::kSmart &&
      LooksGeneric(address, *name, registrable, &group.fallback, &group.evidence)) {
    return group;
  }
  group.key = std::string(kDomainKeyPrefix) + registrable;
  group.awl_key = options.privacy ? Sha1Hex(group.key) : group.key;
  group.basis = KeyBasis::kDomain;
  return group;
}

std::string ClientGroupKey(const policy::IpAddress& address, std::string_view client_name,
                           LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl) {
  return GroupClient(address, client_name, lookup_by, options, psl).key;
}

std::string ClientAwlKey(const policy::IpAddress& address, std::string_view client_name,
                         LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl) {
  return GroupClient(address, client_name, lookup_by, options, psl).awl_key;
}

std::string GroupTripletKey(std::string_view group_key, std::string_view sender,
                            std::string_view recipient, const policy::KeyOptions& options) {
  return policy::TripletKeyFromClientPart(group_key, sender, recipient, options);
}

}  // namespace greylight::reputation
