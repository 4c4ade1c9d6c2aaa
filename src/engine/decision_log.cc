#include "engine/decision_log.h"

#include <fmt/format.h>

namespace greylight::engine {
namespace {

using policy::Reason;

// The number the decision line carries: postgrey logs "delay=N" for a first delivery that
// got the X-Greylist header; JSON also gives the seconds missing of a greylisted request.
struct LineNumber {
  std::string_view name;  // empty: none
  long long value = 0;
};

LineNumber NumberOf(const Decision& d) {
  if (d.reason == Reason::kPassFirst && d.header_added) return {"delay", d.delayed.count()};
  if (policy::VerdictOf(d.reason) == policy::Verdict::kGreylist) {
    return {"missing", d.missing.count()};
  }
  return {};
}

void AppendField(std::string& line, std::string_view name, std::string_view value) {
  if (value.empty() || value == "0") return;  // Perl-false values are left out, as postgrey
  line.append(", ").append(name).push_back('=');
  log::AppendEscaped(line, value);
}

void AppendJsonField(std::string& json, std::string_view name, std::string_view value) {
  json += ",\"";
  json += name;
  json += "\":";
  log::AppendJsonString(json, value);
}

bool IsSpfError(const spf::SpfResult& spf) {
  return spf.code == spf::SpfCode::kTempError || spf.code == spf::SpfCode::kPermError;
}

}  // namespace

std::string SpfSummary(const spf::SpfResult& spf) {
  std::string text(spf::SpfCodeName(spf.code));
  if (!spf.domain.empty()) text.append(" ").append(spf.domain);
  if (spf.broad) text.append(" (broad)");
  if (IsSpfError(spf) && !spf.problem.empty()) text.append(" (").append(spf.problem).append(")");
  return text;
}

std::string& LogLines::Add(log::Level level, bool rate_limited) {
  if (size_ == lines_.size()) lines_.emplace_back();
  LogLine& line = lines_[size_++];
  line.level = level;
  line.rate_limited = rate_limited;
  line.text.clear();
  return line.text;
}

void LogLines::EraseRateLimited() {
  size_t kept = 0;
  for (size_t i = 0; i < size_; ++i) {
    if (lines_[i].rate_limited) continue;
    if (i != kept) std::swap(lines_[i], lines_[kept]);
    ++kept;
  }
  size_ = kept;
}

std::string PostgreyDecisionLine(const Decision& d) {
  std::string line;
  line.reserve(256);
  AppendPostgreyDecisionLine(line, d);
  return line;
}

void AppendPostgreyDecisionLine(std::string& line, const Decision& d) {
  const Request& request = *d.request;
  if (request.queue_id && !request.queue_id->empty()) {
    log::AppendEscaped(line, *request.queue_id);
    line.append(": ");
  }
  line.append("action=").append(policy::ActionWord(d.reason));
  line.append(", reason=").append(policy::ReasonWord(d.reason));
  if (d.reason == Reason::kEarlyRetry) {
    fmt::format_to(std::back_inserter(line), " ({}s missing)", d.missing.count());
  }
  LineNumber number = NumberOf(d);
  if (number.name == "delay") fmt::format_to(std::back_inserter(line), ", delay={}", number.value);
  if (!d.group.empty()) {
    line.append(", group=");
    log::AppendEscaped(line, d.group);
  }
  if (d.spf) {
    line.append(", spf=");
    log::AppendEscaped(line, SpfSummary(*d.spf));
  }
  AppendField(line, "client_name", request.client_name);
  AppendField(line, "client_address", request.client_address);
  AppendField(line, "sender", request.sender);
  AppendField(line, "recipient", request.recipient);
}

std::string JsonDecisionLine(const Decision& d, std::chrono::microseconds took) {
  std::string json;
  AppendJsonDecisionLine(json, d, took);
  return json;
}

void AppendJsonDecisionLine(std::string& json, const Decision& d, std::chrono::microseconds took) {
  const Request& request = *d.request;
  json += "{\"action\":";
  log::AppendJsonString(json, policy::ActionWord(d.reason));
  json += ",\"reason\":";
  log::AppendJsonString(json, policy::ReasonWord(d.reason));
  if (request.queue_id) AppendJsonField(json, "queue_id", *request.queue_id);
  AppendJsonField(json, "client_name", request.client_name);
  AppendJsonField(json, "client_address", request.client_address);
  AppendJsonField(json, "sender", request.sender);
  AppendJsonField(json, "recipient", request.recipient);
  if (request.instance) AppendJsonField(json, "instance", *request.instance);
  LineNumber number = NumberOf(d);
  if (!number.name.empty()) {
    fmt::format_to(std::back_inserter(json), ",\"{}\":{}", number.name, number.value);
  }
  if (!d.key.empty()) AppendJsonField(json, "key", d.key);
  if (!d.group.empty()) AppendJsonField(json, "group", d.group);
  if (d.spf) {
    AppendJsonField(json, "spf", spf::SpfCodeName(d.spf->code));
    if (!d.spf->domain.empty()) AppendJsonField(json, "spf_domain", d.spf->domain);
    if (d.spf->broad) json += ",\"spf_broad\":true";
    if (IsSpfError(*d.spf) && !d.spf->problem.empty()) {
      AppendJsonField(json, "spf_problem", d.spf->problem);
    }
  }
  fmt::format_to(std::back_inserter(json), ",\"decision_us\":{}}}", took.count());
}

void RenderDecisionLog(const Decision& d, LogFormat format, std::chrono::microseconds took,
                       LogLines& out) {
  const bool warnings = log::Enabled(log::Level::kWarning);
  const bool notices = log::Enabled(log::Level::kNotice);
  if (!d.request) {
    if (!warnings) return;
    switch (d.reason) {
      case Reason::kBadTestTime:
        out.Add(log::Level::kWarning) =
            fmt::format("can't parse policy_test_time: {}", log::Escaped(d.unreadable_detail));
        break;
      case Reason::kBadClientAddress:
        out.Add(log::Level::kWarning) = fmt::format("can't parse client_address from postfix: {}",
                                                    log::Escaped(d.unreadable_detail));
        break;
      default:
        out.Add(log::Level::kWarning) = fmt::format("attribute missing: {}", d.unreadable_detail);
        break;
    }
    return;
  }
  const Request& request = *d.request;
  if (warnings) {
    for (const std::string& failure : d.list_failures) {
      // A list that cannot be asked counts as not listing the client: DNS trouble never
      // delays mail beyond normal greylisting.
      out.Add(log::Level::kWarning, /*rate_limited=*/true) =
          fmt::format("DNS list lookup for {} failed, treated as not listed: {}",
                      request.client.ToPostgreyString(), failure);
    }
  }
  if (d.trap_hit && notices) {
    out.Add(log::Level::kNotice) =
        fmt::format("greytrap hit: {}[{}] sent to {} ({}: {})", log::Escaped(request.client_name),
                    request.client.ToPostgreyString(), log::Escaped(request.recipient),
                    d.trap_hit->source, log::Escaped(d.trap_hit->entry));
  }
  if (d.store_failed()) {
    if (warnings) {
      out.Add(log::Level::kWarning, /*rate_limited=*/true) =
          fmt::format("store error, answering {}: {}", d.action, d.store_error);
    }
    return;
  }
  if (warnings && d.first_corrected) {
    out.Add(log::Level::kWarning) = "correcting date for first seen in the future!";
  }
  if (warnings && d.client_whitelisted) {
    std::string_view name = request.client_name;
    std::string address = request.client.ToPostgreyString();
    out.Add(log::Level::kWarning) =
        name.empty() || name == "0"
            ? fmt::format("whitelisted: {}", address)
            : fmt::format("whitelisted: {}[{}]", log::Escaped(name), address);
  }
  if (notices) {
    std::string& line = out.Add(log::Level::kNotice);
    if (format == LogFormat::kJson) {
      AppendJsonDecisionLine(line, d, took);
    } else {
      AppendPostgreyDecisionLine(line, d);
    }
  }
}

}  // namespace greylight::engine
