#pragma once

// postgrey-compatible client and recipient whitelists (compat spec section 6): the line
// syntax of postgrey's whitelist_clients / whitelist_recipients files, its default file
// locations and `.local` companion rule, and indexed matching so that lookups stay cheap
// as the lists grow.
//
// Differences from postgrey (documented fixes):
// - An entry postgrey would silently drop or misread (bad CIDR such as /33, 300.1.1.1,
//   an unparsable IPv6 network, a regex PCRE2 cannot compile, an entry with inner
//   whitespace, a dotted quad with leading zeros that NetAddr::IP reads as octal, a
//   token postgrey would take for a host name although no host name can match it:
//   digits and dots only such as 1.2.3.4.5, or containing '/' such as 1.2.3.4/123 or an
//   unterminated /regex) makes loading fail with "<file> line <n>: <reason>", so a
//   reload keeps the previous lists.
// - `a.b` means a.b.0.0/16 as postgrey documents (postgrey's code makes it a /24).
// - A file that exists but cannot be read is an error; only a missing file is a warning.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ip_address.h"
#include "policy/whitelist_matcher.h"
#include "util/status.h"

namespace greylight::whitelist {

// One whitelist file to read.
struct WhitelistFile {
  std::string path;
  // postgrey's rule: a missing file is silently skipped when this is set, otherwise it
  // yields the warning "can't open <path>: <errno text>". Set by FileFromPath from the
  // name (true exactly when it ends in ".local").
  bool missing_ok = false;
};

// Returns {path, missing_ok = path ends in ".local"}.
WhitelistFile FileFromPath(std::string path);

// The files making up one set of whitelists, read in this order; entries of all client
// files are concatenated, as are those of all recipient files.
struct WhitelistFiles {
  std::vector<WhitelistFile> clients;
  std::vector<WhitelistFile> recipients;
};

inline constexpr std::string_view kGreylightConfigDir = "/etc/greylight";
inline constexpr std::string_view kPostgreyConfigDir = "/etc/postgrey";

// Where the default lists are looked for; tests point these at temporary directories.
struct DefaultDirs {
  std::string greylight = std::string(kGreylightConfigDir);
  std::string postgrey = std::string(kPostgreyConfigDir);
};

// The files to load given the repeatable --whitelist-clients / --whitelist-recipients
// values. For clients: if `client_files` is non-empty, exactly those files (no `.local`
// companions are added); otherwise `<greylight>/whitelist_clients` and its `.local` if
// `<greylight>/whitelist_clients` exists, else `<postgrey>/whitelist_clients` and its
// `.local`. The same independently for recipients (`whitelist_recipients`). Checks the
// file system (existence only), so call it again at each reload.
WhitelistFiles ResolveWhitelistFiles(std::span<const std::string> client_files,
                                     std::span<const std::string> recipient_files,
                                     const DefaultDirs& dirs = {});

class WhitelistBuilder;

// Immutable, indexed client and recipient whitelists. Safe to share between threads
// (all methods are const and lock-free; regex scratch space is per thread). A reload
// builds a new instance and swaps the shared_ptr.
//
// Matching follows postgrey: a client matches by name first (host-name suffixes and
// /regex/ entries against the raw client_name, case-insensitive), then by address (all
// IPv4 and IPv6 networks). Addresses are compared the way NetAddr::IP does, as 128-bit
// numbers with IPv4 a.b.c.d taken as ::a.b.c.d: an IPv4 client is thus inside IPv6
// entries such as ::/0 or ::/96, and an IPv6 client ::a.b.c.d inside IPv4 entries.
// When several entries match, the hit reported is the earliest in file order.
class Whitelists final : public policy::WhitelistMatcher {
 public:
  // Reads and parses `files` in order. Returns the lists, or a non-ok Status naming the
  // first invalid entry ("<file> line <n>: <reason>", plus a count of further errors) or
  // an unreadable file. Missing non-`.local` files do not fail the load; their warnings
  // ("can't open <file>: <errno text>") are available from warnings().
  static Result<std::shared_ptr<const Whitelists>> Load(const WhitelistFiles& files);

  // A list with no entries: matches nothing.
  static std::shared_ptr<const Whitelists> Empty();

  std::optional<policy::WhitelistHit> MatchClient(std::string_view client_name,
                                                  const policy::IpAddress& address) const override;
  std::optional<policy::WhitelistHit> MatchRecipient(std::string_view recipient) const override;

  // Entry counts, for the "loaded ..." log line.
  size_t client_entry_count() const;
  size_t recipient_entry_count() const;
  // Non-fatal problems found while loading (missing files), for the caller to log.
  const std::vector<std::string>& warnings() const { return warnings_; }

  ~Whitelists() override;
  Whitelists(const Whitelists&) = delete;
  Whitelists& operator=(const Whitelists&) = delete;

 private:
  friend class WhitelistBuilder;
  struct Index;  // the lookup structures, defined in whitelist.cc

  Whitelists();

  std::unique_ptr<Index> index_;
  std::vector<std::string> warnings_;
};

// Builds a Whitelists from text, without touching the file system: the seam Load uses,
// and the one tests, the benchmark and a fuzz target use directly. Not thread-safe.
class WhitelistBuilder {
 public:
  WhitelistBuilder();
  ~WhitelistBuilder();
  WhitelistBuilder(const WhitelistBuilder&) = delete;
  WhitelistBuilder& operator=(const WhitelistBuilder&) = delete;

  // Parses the lines of a client (or recipient) whitelist file. `source` is the file
  // name used in error messages and hits. Invalid entries are recorded as errors (see
  // Build); valid entries of the same text are still added.
  void AddClientText(std::string_view source, std::string_view text);
  void AddRecipientText(std::string_view source, std::string_view text);
  // Records a non-fatal message, returned by Whitelists::warnings().
  void AddWarning(std::string message);
  // Records a fatal problem that is not tied to a line (e.g. an unreadable file).
  void AddError(std::string message);

  // Returns the lists, or InvalidArgument with the first error and the number of others.
  // Leaves the builder empty.
  Result<std::shared_ptr<const Whitelists>> Build();

 private:
  std::unique_ptr<Whitelists::Index> index_;
  std::vector<std::string> warnings_;
  std::vector<std::string> errors_;
};

}  // namespace greylight::whitelist
