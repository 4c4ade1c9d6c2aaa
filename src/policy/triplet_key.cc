#include "policy/triplet_key.h"

#include <algorithm>
#include <array>

#include "util/ascii.h"
#include "util/sha1.h"

namespace greylight::policy {
namespace {

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool StartsWithBatvTag(std::string_view field) {
  if (field.size() < 10) return false;
  return std::all_of(field.begin(), field.begin() + 10,
                     [](char c) { return IsDigit(c) || (c >= 'a' && c <= 'z'); });
}

// BATV is "prvs=tag=local" but some senders swap the fields; postgrey keeps the field that
// does not look like a 10-character tag, and the last one when in doubt. postgrey splits
// with Perl's split(/=/, s), which drops trailing empty fields: the address qualifies when
// that leaves exactly three fields. Counted in place, without a field list.
std::string_view StripBatv(std::string_view local) {
  if (!local.starts_with("prvs=")) return local;
  std::array<std::string_view, 3> fields;
  size_t count = 0;      // fields seen
  size_t non_empty = 0;  // fields up to the last non-empty one: what split keeps
  size_t start = 0;
  while (true) {
    size_t end = local.find('=', start);
    std::string_view field = local.substr(start, end == std::string_view::npos ? end : end - start);
    if (count < fields.size()) fields[count] = field;
    ++count;
    if (!field.empty()) non_empty = count;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (non_empty != 3) return local;
  bool first_is_tag = StartsWithBatvTag(fields[1]);
  bool second_is_tag = StartsWithBatvTag(fields[2]);
  if (second_is_tag && !first_is_tag) return fields[1];
  return fields[2];
}

// Perl's s/\b\d+\b/#/g on ASCII: a maximal digit run bounded by non-word characters or
// the ends of the string becomes '#'. Appends to `out`.
void AppendMaskedNumbers(std::string& out, std::string_view local) {
  size_t i = 0;
  while (i < local.size()) {
    if (!IsDigit(local[i])) {
      out.push_back(local[i++]);
      continue;
    }
    size_t end = i;
    while (end < local.size() && IsDigit(local[end])) ++end;
    bool boundary_before = i == 0 || !IsWordChar(local[i - 1]);
    bool boundary_after = end == local.size() || !IsWordChar(local[end]);
    if (boundary_before && boundary_after) {
      out.push_back('#');
    } else {
      out.append(local.substr(i, end - i));
    }
    i = end;
  }
}

bool IsBase64Char(char c) { return IsWordChar(c) ? c != '_' : c == '+' || c == '/'; }
bool IsAlnum(char c) { return IsWordChar(c) && c != '_'; }
bool IsSrsSeparator(char c) { return c == '=' || c == '+' || c == '-'; }

// Takes the text up to the next '=' off the front of `rest`; nullopt if there is none.
std::optional<std::string_view> TakeField(std::string_view& rest) {
  size_t end = rest.find('=');
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end + 1);
  return field;
}

bool ValidSrsHash(std::string_view hash) {
  return !hash.empty() && std::all_of(hash.begin(), hash.end(), IsBase64Char);
}

// The SRS0 part after "SRS0" and its separator: "HHH=TT=domain=local".
std::optional<std::string> DecodeSrs0Body(std::string_view body) {
  auto hash = TakeField(body);
  auto timestamp = TakeField(body);
  auto domain = TakeField(body);
  if (!hash || !timestamp || !domain || !ValidSrsHash(*hash)) return std::nullopt;
  if (timestamp->size() != 2 || !IsAlnum((*timestamp)[0]) || !IsAlnum((*timestamp)[1])) {
    return std::nullopt;
  }
  const std::string_view local = body;
  if (domain->empty() || domain->find('@') != std::string_view::npos || local.empty()) {
    return std::nullopt;
  }
  std::string original(local);
  original.push_back('@');
  original.append(*domain);
  return original;
}

bool StartsWithTag(std::string_view text, std::string_view tag) {
  return text.size() > tag.size() && AsciiLowered(text.substr(0, tag.size())) == tag &&
         IsSrsSeparator(text[tag.size()]);
}

}  // namespace

std::optional<std::string> SrsOriginalSender(std::string_view sender) {
  size_t at = sender.rfind('@');
  if (at == std::string_view::npos || at + 1 == sender.size()) return std::nullopt;
  std::string_view local = sender.substr(0, at);
  if (StartsWithTag(local, "srs0")) return DecodeSrs0Body(local.substr(5));
  if (!StartsWithTag(local, "srs1")) return std::nullopt;
  // "SRS1=HHH=first-forwarder==HHH=TT=domain=local": the hash, the first forwarder's
  // domain, then the SRS0 address without its "SRS0" tag (so starting with its separator).
  std::string_view rest = local.substr(5);
  auto hash = TakeField(rest);
  auto forwarder = TakeField(rest);
  if (!hash || !forwarder || !ValidSrsHash(*hash) || forwarder->empty() || rest.empty() ||
      !IsSrsSeparator(rest.front())) {
    return std::nullopt;
  }
  return DecodeSrs0Body(rest.substr(1));
}

void AppendNormalisedSender(std::string& out, std::string_view sender, bool decode_srs) {
  if (decode_srs) {
    if (std::optional<std::string> original = SrsOriginalSender(sender)) {
      AppendNormalisedSender(out, *original);
      return;
    }
  }
  size_t at = sender.find('@');
  if (at == std::string_view::npos) {
    out.append(sender);
    return;
  }
  std::string_view local = StripBatv(sender.substr(0, at));
  local = local.substr(0, local.find('+'));
  AppendMaskedNumbers(out, local);
  out.append(sender.substr(at));
}

std::string NormaliseSender(std::string_view sender, bool decode_srs) {
  std::string normalised;
  normalised.reserve(sender.size());
  AppendNormalisedSender(normalised, sender, decode_srs);
  return normalised;
}

namespace {

void AppendClientNetwork(std::string& out, const IpAddress& client, const KeyOptions& options) {
  if (options.lookup_by_host) {
    client.AppendPostgreyString(out);
    out.append(client.is_v6 ? "/128" : "/32");
    return;
  }
  client.Masked(client.is_v6 ? options.ipv6_cidr : options.ipv4_cidr).AppendPostgreyString(out);
}

// Completes `key`, holding the client part, into "<client part>/<normalised sender>/
// <recipient>", lowercased (or its SHA-1 hex with privacy), in place.
void FinishTripletKey(std::string& key, std::string_view sender, std::string_view recipient,
                      const KeyOptions& options) {
  key.push_back('/');
  AppendNormalisedSender(key, sender, options.decode_srs);
  key.push_back('/');
  key.append(recipient);
  AsciiLowerInPlace(key);
  if (options.privacy) key = Sha1Hex(key);
}

// Room for a typical key: client part, sender, recipient and their separators.
constexpr size_t kTypicalKeyBytes = 96;

}  // namespace

std::string ClientNetwork(const IpAddress& client, const KeyOptions& options) {
  std::string network;
  AppendClientNetwork(network, client, options);
  return network;
}

void AssignTripletKey(std::string& key, const IpAddress& client, std::string_view sender,
                      std::string_view recipient, const KeyOptions& options) {
  key.clear();
  AppendClientNetwork(key, client, options);
  FinishTripletKey(key, sender, recipient, options);
}

std::string TripletKey(const IpAddress& client, std::string_view sender, std::string_view recipient,
                       const KeyOptions& options) {
  std::string key;
  key.reserve(kTypicalKeyBytes);
  AssignTripletKey(key, client, sender, recipient, options);
  return key;
}

std::string TripletKeyFromClientPart(std::string_view client_part, std::string_view sender,
                                     std::string_view recipient, const KeyOptions& options) {
  std::string key;
  key.reserve(kTypicalKeyBytes);
  key.append(client_part);
  FinishTripletKey(key, sender, recipient, options);
  return key;
}

void AssignClientKey(std::string& key, const IpAddress& client, const KeyOptions& options) {
  key.clear();
  client.AppendPostgreyString(key);
  if (options.privacy) key = Sha1Hex(key);
}

std::string ClientKey(const IpAddress& client, const KeyOptions& options) {
  std::string key;
  AssignClientKey(key, client, options);
  return key;
}

}  // namespace greylight::policy
