#pragma once

// Sender-pool grouping: which key stands for "the same client" in the triplet and in the
// client auto-whitelist. postgrey keys a client by its masked network (or, with
// --lookup-by-host, by its address); large providers retry from another network each
// time, so greylight can also key a client by the registrable domain of its verified
// reverse name ("domain:google.com"), and "smart" does so only for names that do not look
// like a generic (residential or dynamic-pool) name.
//
// Key forms, by basis (KeyBasis):
//   kSubnet  policy::ClientNetwork with lookup_by_host unset: "203.0.113.0",
//            "2001:DB8:1:2:0:0:0:0" (byte-identical to postgrey's key part)
//   kHost    policy::ClientNetwork with lookup_by_host set: "203.0.113.5/32"
//   kDomain  "domain:" + the lowercased registrable domain, e.g. "domain:google.com".
//            An address key never contains "domain:", so the two cannot collide.

#include <memory>
#include <string>
#include <string_view>

#include "policy/ip_address.h"
#include "policy/triplet_key.h"
#include "util/status.h"

typedef struct psl_ctx_st psl_ctx_t;

namespace greylight::reputation {

// The public suffix list (libpsl). Immutable once loaded; all methods are const and safe
// to call from any number of threads at once.
class Psl {
 public:
  // The newest list the system has: libpsl's psl_latest(NULL), which on Debian reads the
  // `publicsuffix` package's /usr/share/publicsuffix/public_suffix_list.dafsa, falling
  // back to the list built into libpsl. Fails only if neither is usable.
  static Result<std::unique_ptr<const Psl>> LoadSystem();
  // A list in the public_suffix_list.dat text format (or a libpsl DAFSA file), for tests
  // and for sites that ship their own copy. Fails if the file cannot be read.
  static Result<std::unique_ptr<const Psl>> LoadFile(const std::string& path);

  ~Psl();
  Psl(const Psl&) = delete;
  Psl& operator=(const Psl&) = delete;

  // The registrable domain ("eTLD+1") of `lowercase_name`, e.g. "google.com" for
  // "mail-wr1-f41.google.com" and "example.co.uk" for "mx.example.co.uk"; empty if the
  // name is a public suffix itself or has no registrable part. REQUIRES: the name is
  // lowercase ASCII without a trailing dot (ClientGroup checks and normalises it).
  std::string RegistrableDomain(std::string_view lowercase_name) const;

  // What was loaded, for the startup log line: the file name or "built-in".
  const std::string& source() const { return source_; }

 private:
  Psl(psl_ctx_t* context, bool owned, std::string source);

  psl_ctx_t* context_;
  bool owned_;  // false for libpsl's static built-in context, which must not be freed
  std::string source_;
};

// --lookup-by: how the client part of the keys is built.
enum class LookupBy { kSubnet, kHost, kDomain, kSmart };

// True for the modes that group by domain and so need the public suffix list.
constexpr bool GroupsByDomain(LookupBy lookup_by) {
  return lookup_by == LookupBy::kDomain || lookup_by == LookupBy::kSmart;
}

// The prefix of every domain group key ("domain:google.com").
inline constexpr std::string_view kDomainKeyPrefix = "domain:";

// Parses the option value "subnet", "host", "domain" or "smart".
Result<LookupBy> ParseLookupBy(std::string_view text);
std::string_view LookupByName(LookupBy lookup_by);

// What a client key was finally based on.
enum class KeyBasis { kSubnet, kHost, kDomain };

// Why a domain or smart lookup did not group by domain (kNone when it did, or when the
// mode never groups).
enum class Fallback {
  kNone,
  kUnverified,     // client_name empty or "unknown": Postfix could not verify the name
  kInvalidName,    // not a syntactically valid host name (or an address literal)
  kNoRegistrable,  // the name is a public suffix or has no registrable domain
  kEmbedsAddress,  // smart: the name spells the client's own address
  kDynamicWord,    // smart: the name has a dynamic-pool word such as "dsl" or "pool"
};
std::string_view FallbackName(Fallback fallback);

// The keys for one client.
struct ClientGroup {
  // The client part of the triplet key (see the key forms at the top of this file).
  std::string key;
  // The client auto-whitelist key: postgrey's policy::ClientKey (the unmasked address,
  // SHA-1 hex with privacy) unless the client is grouped by domain, then the group key
  // (SHA-1 hex of it with privacy), so the auto-whitelist counts per group.
  std::string awl_key;
  KeyBasis basis = KeyBasis::kSubnet;
  Fallback fallback = Fallback::kNone;
  // For kDynamicWord the word found, for kEmbedsAddress the matching part; for logs.
  std::string evidence;
};

// Builds the keys for a client at `address` whose Postfix-verified name is `client_name`
// ("unknown" when unverified). kSubnet/kHost ignore the name and give exactly today's
// postgrey keys (kHost forces lookup_by_host whatever `options` says; kSubnet uses
// `options` as given, so options.lookup_by_host still selects the host key). kDomain
// groups every valid verified name by its registrable domain; kSmart only names that are
// not generic (LooksGeneric). Both fall back to the subnet key (per `options`) otherwise.
// Pure; thread-safe.
ClientGroup GroupClient(const policy::IpAddress& address, std::string_view client_name,
                        LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl);

// GroupClient(...).key: the client part of the triplet key.
std::string ClientGroupKey(const policy::IpAddress& address, std::string_view client_name,
                           LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl);
// GroupClient(...).awl_key: the client auto-whitelist key.
std::string ClientAwlKey(const policy::IpAddress& address, std::string_view client_name,
                         LookupBy lookup_by, const policy::KeyOptions& options, const Psl& psl);

// The triplet key with `group_key` as its client part: lowercase
// "<group_key>/<normalised sender>/<recipient>", SHA-1 hex with options.privacy. For a
// subnet or host group key it equals policy::TripletKey(address, sender, recipient,
// options) byte for byte.
std::string GroupTripletKey(std::string_view group_key, std::string_view sender,
                            std::string_view recipient, const policy::KeyOptions& options);

// The smart-mode test: does the verified name `lowercase_name` (valid host name, no
// trailing dot), whose registrable domain is `registrable`, look like a generic name of
// an address pool rather than a mail server's own name? Only the labels left of the
// registrable domain are examined. Generic when either
//  * they spell the client's own address (kEmbedsAddress):
//    IPv4 - three or four consecutive octets in order or reversed as separate numbers
//           ("203-0-113-5", "5.113.0.203", "host5-113-0-203", "c-203-0-113"), the
//           12-digit zero-padded form ("203000113005"), or the 8-digit hex form
//           ("cb007105");
//    IPv6 - three consecutive 16-bit groups of the address in order or reversed as hex
//           numbers ("2001-db8-1-2-..."), or 16 or more of its nibbles in a row, forwards
//           or reversed, ignoring separators ("20010db8000100020000...", the ip6.arpa
//           style "5.0.0.0.4.0.0.0....");
//    two octets alone ("a8-30.smtp-out.amazonses.com" for 54.240.8.30) do not count:
//    provider outbound names often carry them.
//  * or a word of them (a maximal run of letters) is one of kDynamicPoolWords
//    (kDynamicWord).
// On true, sets `fallback` and `evidence`. Pure; thread-safe.
bool LooksGeneric(const policy::IpAddress& address, std::string_view lowercase_name,
                  std::string_view registrable, Fallback* fallback, std::string* evidence);

// The words that mark a dynamic or residential pool name in smart mode. Documented in
// docs/tuning.md; matched as whole letter runs, so "dsl" matches "dsl-5" and "adsl"
// only through its own entry, while "mailhost" is not "host".
inline constexpr std::string_view kDynamicPoolWords[] = {
    "adsl",  "bb",   "broadband",   "cable",    "cablemodem", "catv",   "client",     "clients",
    "cm",    "cpe",  "cust",        "customer", "dhcp",       "dial",   "dialin",     "dialup",
    "dip",   "dsl",  "dyn",         "dynamic",  "dynip",      "fiber",  "fibre",      "ftth",
    "fttx",  "home", "host",        "ip",       "mobile",     "nat",    "pool",       "ppp",
    "pppoe", "res",  "residential", "resnet",   "sdsl",       "static", "subscriber", "user",
    "users", "vdsl", "wifi",        "wireless", "xdsl",
};

}  // namespace greylight::reputation
