#include "tools/mail_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

#include "policy/records.h"
#include "spf/spf_check.h"
#include "tools/output_format.h"
#include "tools/record_filter.h"
#include "util/ascii.h"

namespace greylight::tools {
namespace {

constexpr std::string_view kRejectMarker = "reject: RCPT from ";
constexpr std::string_view kRejectedText = ": Recipient address rejected: ";
constexpr std::string_view kFromMarker = "; from=<";
constexpr std::string_view kToMarker = "> to=<";
constexpr std::string_view kPostgreyReportDefault = "Greylisted";

// Reads the decimal number at the start of `text`.
std::optional<long long> LeadingNumber(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return value;
}

}  // namespace

std::string GreylistTextPrefix(std::string_view greylist_text) {
  size_t end = greylist_text.size();
  for (std::string_view placeholder : {"%s", "%r"}) {
    end = std::min(end, greylist_text.find(placeholder));
  }
  std::string_view prefix = greylist_text.substr(0, end);
  while (!prefix.empty() && prefix.back() == ' ') prefix.remove_suffix(1);
  return prefix.empty() ? std::string(kPostgreyReportDefault) : std::string(prefix);
}

std::optional<GreylistReject> ParseGreylistReject(std::string_view line,
                                                  std::string_view text_prefix) {
  size_t at = line.find(kRejectMarker);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + kRejectMarker.size());
  // "NAME[IP]: 450 ..." — a client name never contains '[' (it is a DNS name or "unknown").
  size_t open = rest.find('[');
  size_t close = rest.find("]: ");
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  GreylistReject reject;
  reject.client_name = std::string(rest.substr(0, open));
  std::string_view address = rest.substr(open + 1, close - open - 1);
  if (address.starts_with("IPv6:")) address.remove_prefix(5);
  std::optional<policy::IpAddress> parsed = policy::IpAddress::Parse(address);
  if (!parsed) return std::nullopt;
  reject.client_address = std::string(address);
  reject.address = *parsed;
  rest = rest.substr(close + 3);
  if (rest.empty() || rest[0] != '4') return std::nullopt;  // greylisting is a 4xx reply
  size_t rejected = rest.find(kRejectedText);
  if (rejected == std::string_view::npos) return std::nullopt;
  rest = rest.substr(rejected + kRejectedText.size());
  if (!rest.starts_with(text_prefix)) return std::nullopt;
  size_t from = rest.find(kFromMarker);
  if (from == std::string_view::npos) return std::nullopt;
  rest = rest.substr(from + kFromMarker.size());
  size_t to = rest.find(kToMarker);
  if (to == std::string_view::npos) return std::nullopt;
  reject.sender = std::string(rest.substr(0, to));
  rest = rest.substr(to + kToMarker.size());
  // The recipient ends at the '>' before " proto=" (or " helo=", or the line end).
  size_t end = std::string_view::npos;
  for (std::string_view next : {"> proto=", "> helo="}) {
    end = rest.find(next);
    if (end != std::string_view::npos) break;
  }
  if (end == std::string_view::npos) {
    if (rest.empty() || rest.back() != '>') return std::nullopt;
    end = rest.size() - 1;
  }
  reject.recipient = std::string(rest.substr(0, end));
  constexpr std::string_view kHeloMarker = " helo=<";
  if (size_t helo = rest.find(kHeloMarker, end); helo != std::string_view::npos) {
    std::string_view name = rest.substr(helo + kHeloMarker.size());
    reject.helo = std::string(name.substr(0, name.find('>')));
  }
  return reject;
}

std::optional<long long> ParsePassDelay(std::string_view line) {
  constexpr std::string_view kText = "action=pass, reason=triplet found, delay=";
  if (size_t at = line.find(kText); at != std::string_view::npos) {
    return LeadingNumber(line.substr(at + kText.size()));
  }
  constexpr std::string_view kJson = "\"action\":\"pass\",\"reason\":\"triplet found\"";
  constexpr std::string_view kJsonDelay = ",\"delay\":";
  if (line.find(kJson) == std::string_view::npos) return std::nullopt;
  size_t delay = line.find(kJsonDelay);
  if (delay == std::string_view::npos) return std::nullopt;
  return LeadingNumber(line.substr(delay + kJsonDelay.size()));
}

long long NearestRankPercentile(const std::vector<long long>& sorted, int percent) {
  size_t rank = (static_cast<size_t>(percent) * sorted.size() + 99) / 100;
  return sorted[std::max<size_t>(rank, 1) - 1];
}

MailLogScanner::MailLogScanner(std::string_view greylist_text, const engine::KeyScheme& keys,
                               bool spf_keys)
    : text_prefix_(GreylistTextPrefix(greylist_text)), keys_(keys), spf_keys_(spf_keys) {}

void MailLogScanner::AddLine(std::string_view line) {
  if (std::optional<long long> delay = ParsePassDelay(line)) {
    delays_.push_back(*delay);
    return;
  }
  if (std::optional<GreylistReject> reject = ParseGreylistReject(line, text_prefix_)) {
    std::string key = engine::BuildRequestKeys(reject->address, reject->client_name, reject->sender,
                                               reject->recipient, keys_)
                          .triplet;
    std::string spf_key;
    if (spf_keys_) {
      // The domain SPF checks, as greylightd's checker names it (lowercase, no final dot).
      std::string domain = AsciiLowered(
          spf::SpfRequest::ForMailFrom(reject->address, reject->sender, reject->helo).domain);
      if (domain.ends_with('.')) domain.pop_back();
      if (!domain.empty()) {
        spf_key = engine::BuildRequestKeys(reject->address, reject->client_name, reject->sender,
                                           reject->recipient, keys_, domain)
                      .triplet;
      }
    }
    rejects_.try_emplace({reject->address, std::move(key)},
                         Rejected{std::move(*reject), std::move(spf_key)});
  }
}

Result<Report> MailLogScanner::Finish(const TripletLookup& lookup,
                                      const policy::GreylistTiming& timing) const {
  Report report;
  std::set<policy::IpAddress> clients;
  std::set<policy::IpAddress> clients_retried;
  for (const auto& [id, rejected] : rejects_) {
    const GreylistReject& reject = rejected.reject;
    auto read = [&lookup](const std::string& key) -> Result<std::optional<policy::TripletRecord>> {
      auto value = lookup(key);
      if (!value.ok()) return value.status();
      if (!*value) return std::optional<policy::TripletRecord>();
      return policy::DecodeTriplet(**value);
    };
    std::string key = id.second;
    auto record = read(key);
    if (!record.ok()) return record.status();
    if (!(*record && StateOf(**record, timing) == TripletState::kPassed) &&
        !rejected.spf_key.empty()) {
      auto spf_record = read(rejected.spf_key);
      if (!spf_record.ok()) return spf_record.status();
      if (*spf_record) {
        key = rejected.spf_key;
        record = std::move(spf_record);
      }
    }
    clients.insert(reject.address);
    ++report.greylisted_triplets;
    if (*record && StateOf(**record, timing) == TripletState::kPassed) {
      clients_retried.insert(reject.address);
      continue;
    }
    report.never_came_back.push_back(ReportEntry{reject, key, record->has_value()});
  }
  std::sort(report.never_came_back.begin(), report.never_came_back.end(),
            [](const ReportEntry& a, const ReportEntry& b) {
              return std::tie(a.reject.address, a.reject.sender, a.reject.recipient) <
                     std::tie(b.reject.address, b.reject.sender, b.reject.recipient);
            });
  report.greylisted_clients = clients.size();
  report.clients_never_retried = clients.size() - clients_retried.size();
  report.delays = delays_;
  std::sort(report.delays.begin(), report.delays.end());
  return report;
}

namespace {

std::string SenderText(std::string_view sender) {
  return sender.empty() ? std::string("<>") : std::string(sender);
}

double Share(size_t part, size_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

std::string FormatReportText(const Report& report) {
  std::string out;
  for (const ReportEntry& entry : report.never_came_back) {
    const GreylistReject& r = entry.reject;
    out += fmt::format("{} {} {} {}\n", r.client_address, r.client_name, SenderText(r.sender),
                       r.recipient);
  }
  if (!out.empty()) out += "\n";
  out += "summary:\n";
  if (report.delays.empty()) {
    out += "  messages delayed: 0\n";
  } else {
    out += fmt::format("  messages delayed: {} (median {} s, p90 {} s)\n", report.delays.size(),
                       NearestRankPercentile(report.delays, 50),
                       NearestRankPercentile(report.delays, 90));
  }
  out += fmt::format("  greylisted triplets: {}, never came back: {}\n", report.greylisted_triplets,
                     report.never_came_back.size());
  out += fmt::format("  greylisted clients: {}, never retried: {} ({:.1f}%)\n",
                     report.greylisted_clients, report.clients_never_retried,
                     100.0 * Share(report.clients_never_retried, report.greylisted_clients));
  return out;
}

std::string FormatReportJson(const Report& report) {
  std::string out = "{\"never_came_back\":[";
  bool first = true;
  for (const ReportEntry& entry : report.never_came_back) {
    const GreylistReject& r = entry.reject;
    if (!first) out += ",";
    first = false;
    out += fmt::format(
        "{{\"client_address\":{},\"client_name\":{},\"sender\":{},\"recipient\":{},"
        "\"key\":{},\"stored\":{}}}",
        JsonString(r.client_address), JsonString(r.client_name), JsonString(r.sender),
        JsonString(r.recipient), JsonString(entry.key),
        entry.stored ? "\"pending\"" : "\"absent\"");
  }
  out += "],\"summary\":{";
  out += fmt::format("\"messages_delayed\":{},", report.delays.size());
  if (report.delays.empty()) {
    out += "\"delay_median\":null,\"delay_p90\":null,";
  } else {
    out += fmt::format("\"delay_median\":{},\"delay_p90\":{},",
                       NearestRankPercentile(report.delays, 50),
                       NearestRankPercentile(report.delays, 90));
  }
  out += fmt::format(
      "\"greylisted_triplets\":{},\"never_came_back\":{},\"greylisted_clients\":{},"
      "\"clients_never_retried\":{},\"clients_never_retried_share\":{:.4f}}}}}\n",
      report.greylisted_triplets, report.never_came_back.size(), report.greylisted_clients,
      report.clients_never_retried, Share(report.clients_never_retried, report.greylisted_clients));
  return out;
}

}  // namespace greylight::tools
