#pragma once

// `greylight report`: what postgreyreport prints, from a Postfix mail log plus the store.
//
// A greylisted request shows up in the mail log as Postfix's rejection of the recipient,
//   ... postfix/smtpd[1]: NOQUEUE: reject: RCPT from NAME[IP]: 450 4.2.0 <rcpt>: Recipient
//   address rejected: <greylist text>; from=<sender> to=<rcpt> proto=ESMTP helo=<h>
// and a delayed message that came back as greylightd's (or postgrey's) decision line
//   action=pass, reason=triplet found, delay=N, client_name=...
// (or the same fields in greylightd's --log-format=json). A greylisted triplet "never came
// back" when its record is absent from the store or still pending.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/ip_address.h"
#include "util/status.h"

namespace greylight::tools {

// One greylisted RCPT as Postfix logged it.
struct GreylistReject {
  std::string client_name;     // "unknown" when Postfix had no verified name
  std::string client_address;  // as logged ("192.0.2.10", "2001:db8::1")
  policy::IpAddress address;   // parsed
  std::string sender;          // empty for the null sender
  std::string recipient;
  std::string helo;  // the logged HELO name; empty if none was logged
};

// The literal text every rejection of greylist text `greylist_text` starts with: the
// template up to its first %s or %r placeholder. When that is empty, "Greylisted"
// (postgreyreport's default).
std::string GreylistTextPrefix(std::string_view greylist_text);

// Parses a Postfix smtpd "reject: RCPT from" line with a 4xx reply whose text (after
// "Recipient address rejected: ") starts with `text_prefix`. IPv4 and IPv6 clients.
// Returns nullopt for any other line.
std::optional<GreylistReject> ParseGreylistReject(std::string_view line,
                                                  std::string_view text_prefix);

// The N of a first-acceptance decision line ("action=pass, reason=triplet found,
// delay=N", postgrey's and greylightd's format, or greylightd's JSON line with
// "action":"pass","reason":"triplet found" and "delay":N). nullopt for other lines.
std::optional<long long> ParsePassDelay(std::string_view line);

// The nearest-rank percentile `percent` (1-100) of `sorted` (ascending, non-empty).
long long NearestRankPercentile(const std::vector<long long>& sorted, int percent);

// A greylisted triplet that never came back.
struct ReportEntry {
  GreylistReject reject;  // the first rejection logged for the triplet
  std::string key;        // the store key
  bool stored = false;    // true: present but still pending; false: absent (or malformed)
};

struct Report {
  std::vector<ReportEntry> never_came_back;  // sorted by address, sender, recipient
  size_t greylisted_triplets = 0;            // distinct (client address, key) pairs
  size_t greylisted_clients = 0;             // distinct client addresses
  size_t clients_never_retried = 0;          // of those, clients with no triplet that came back
  std::vector<long long> delays;             // N of every first acceptance, ascending
};

// Reads the store's raw triplet value for a key; nullopt when absent.
using TripletLookup = std::function<Result<std::optional<std::string>>(std::string_view key)>;

// Collects the relevant lines of a mail log, then builds the report. Not thread-safe.
class MailLogScanner {
 public:
  // `greylist_text` is the --greylist-text template greylightd uses; `keys` how it builds
  // triplet keys (from the logged client name too, in the domain modes). A public suffix
  // list in `keys` must outlive the scanner. With `spf_keys` (--spf-keys), the log does not
  // say whether SPF passed, so a triplet also counts as having come back when its SPF-keyed
  // twin (client part spf:<the sender's domain, or the HELO name for <>>) has passed: a
  // retry from any address the domain authorises.
  MailLogScanner(std::string_view greylist_text, const engine::KeyScheme& keys,
                 bool spf_keys = false);

  // Feeds one log line (without its line end).
  void AddLine(std::string_view line);

  // Looks every greylisted triplet up through `lookup`, judges the records with `timing`
  // and returns the report, or the first lookup error.
  Result<Report> Finish(const TripletLookup& lookup, const policy::GreylistTiming& timing) const;

 private:
  struct Rejected {
    GreylistReject reject;
    std::string spf_key;  // with spf_keys_: the triplet's key if SPF passed
  };
  std::string text_prefix_;
  engine::KeyScheme keys_;
  bool spf_keys_;
  // One entry per (client address, triplet key), the first rejection logged for it.
  std::map<std::pair<policy::IpAddress, std::string>, Rejected> rejects_;
  std::vector<long long> delays_;
};

// postgreyreport's lines ("ip name sender recipient", the null sender as "<>"), then a
// summary.
std::string FormatReportText(const Report& report);
std::string FormatReportJson(const Report& report);

}  // namespace greylight::tools
