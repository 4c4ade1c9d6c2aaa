#include "reputation/dns_records.h"

#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

namespace greylight::reputation {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kQuestionFixed = 4;    // type, class
constexpr size_t kRecordFixed = 10;     // type, class, TTL, data length
constexpr size_t kSoaFixedFields = 20;  // serial, refresh, retry, expire, minimum
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kClassIn = 1;
constexpr unsigned kRcodeNoError = 0;
constexpr unsigned kRcodeNxDomain = 3;

// RFC 2181 section 8: a TTL with the top bit set is to be taken as zero.
Seconds TtlFromWire(uint32_t ttl) {
  return Seconds(ttl > 0x7fffffffU ? 0 : static_cast<long long>(ttl));
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

// What c-ares 1.18's parsers do not report: the rcode, the TTLs of TXT, MX and PTR
// answers, and the SOA that carries the negative TTL. Walking the record headers needs
// only fixed-size fields; every name is decoded by c-ares (ares_expand_name checks
// compression pointers, loops and bounds). The walk also refuses A and AAAA records of
// the wrong size, which c-ares' address parsers would skip silently: such an answer is
// garbage, not "not listed".
struct Layout {
  unsigned rcode = 0;
  std::optional<Seconds> answer_ttl;    // smallest TTL in the answer section
  std::optional<Seconds> negative_ttl;  // from the first SOA of the authority section
};

class Walker {
 public:
  explicit Walker(std::span<const uint8_t> message) : m_(message) {}

  uint16_t U16(size_t at) const { return static_cast<uint16_t>((m_[at] << 8) | m_[at + 1]); }
  uint32_t U32(size_t at) const { return (uint32_t{U16(at)} << 16) | U16(at + 2); }
  bool Has(size_t at, size_t count) const { return at <= m_.size() && m_.size() - at >= count; }

  // Moves `pos` past the name there, if c-ares can decode it.
  bool SkipName(size_t& pos) const {
    if (pos >= m_.size()) return false;
    char* name = nullptr;
    long length = 0;
    if (ares_expand_name(m_.data() + pos, m_.data(), static_cast<int>(m_.size()), &name, &length) !=
        ARES_SUCCESS) {
      return false;
    }
    ares_free_string(name);
    pos += static_cast<size_t>(length);
    return pos <= m_.size();
  }

  std::optional<Layout> Read() const {
    if (m_.size() < kHeaderSize || m_.size() > static_cast<size_t>(INT32_MAX)) return {};
    const uint16_t flags = U16(2);
    if ((flags & 0x8000) == 0) return {};  // QR clear: a query, not a response
    Layout layout;
    layout.rcode = flags & 0x000F;
    const unsigned questions = U16(4);
    const unsigned answers = U16(6);
    const unsigned authorities = U16(8);
    size_t pos = kHeaderSize;
    for (unsigned i = 0; i < questions; ++i) {
      if (!SkipName(pos) || !Has(pos, kQuestionFixed)) return {};
      pos += kQuestionFixed;
    }
    for (unsigned i = 0; i < answers + authorities; ++i) {
      if (!SkipName(pos) || !Has(pos, kRecordFixed)) return {};
      const uint16_t type = U16(pos);
      const uint16_t rr_class = U16(pos + 2);
      const Seconds ttl = TtlFromWire(U32(pos + 4));
      const size_t length = U16(pos + 8);
      pos += kRecordFixed;
      if (!Has(pos, length)) return {};
      const size_t end = pos + length;
      if (i < answers) {
        const bool wrong_size = rr_class == kClassIn &&
                                ((type == static_cast<uint16_t>(DnsType::kA) && length != 4) ||
                                 (type == static_cast<uint16_t>(DnsType::kAaaa) && length != 16));
        if (wrong_size) return {};
        layout.answer_ttl = layout.answer_ttl ? std::min(*layout.answer_ttl, ttl) : ttl;
      } else if (type == kTypeSoa && !layout.negative_ttl) {
        size_t at = pos;
        if (!SkipName(at) || !SkipName(at) || at + kSoaFixedFields > end) return {};
        const Seconds minimum = TtlFromWire(U32(at + kSoaFixedFields - 4));
        layout.negative_ttl = std::min(ttl, minimum);
      }
      pos = end;
    }
    return layout;
  }

 private:
  std::span<const uint8_t> m_;
};

struct AresFree {
  void operator()(void* data) const { ares_free_data(data); }
};
struct HostentFree {
  void operator()(hostent* host) const { ares_free_hostent(host); }
};

// Records the c-ares parser status that is neither success nor "no data" as malformed.
bool Malformed(int status) { return status != ARES_SUCCESS && status != ARES_ENODATA; }

Seconds AddressTtl(int ttl) { return Seconds(ttl < 0 ? 0 : ttl); }

// Reads the records of `type` into `out` (kind kFound or kEmpty); false if malformed.
bool ParseRecords(DnsType type, const unsigned char* data, int length, DnsRecords& out) {
  int status = ARES_ENODATA;
  const int header_count = std::max(1, (data[6] << 8) | data[7]);  // ANCOUNT bounds the records
  switch (type) {
    case DnsType::kA: {
      std::vector<ares_addrttl> found(static_cast<size_t>(header_count));
      int count = header_count;
      status = ares_parse_a_reply(data, length, nullptr, found.data(), &count);
      if (Malformed(status)) return false;
      for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
        policy::IpAddress address;
        std::memcpy(address.bytes.data(), &found[static_cast<size_t>(i)].ipaddr, 4);
        out.addresses.push_back(address);
        const Seconds ttl = AddressTtl(found[static_cast<size_t>(i)].ttl);
        out.ttl = i == 0 ? ttl : std::min(out.ttl, ttl);
      }
      break;
    }
    case DnsType::kAaaa: {
      std::vector<ares_addr6ttl> found(static_cast<size_t>(header_count));
      int count = header_count;
      status = ares_parse_aaaa_reply(data, length, nullptr, found.data(), &count);
      if (Malformed(status)) return false;
      for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
        policy::IpAddress address;
        address.is_v6 = true;
        std::memcpy(address.bytes.data(), &found[static_cast<size_t>(i)].ip6addr, 16);
        out.addresses.push_back(address);
        const Seconds ttl = AddressTtl(found[static_cast<size_t>(i)].ttl);
        out.ttl = i == 0 ? ttl : std::min(out.ttl, ttl);
      }
      break;
    }
    case DnsType::kTxt: {
      ares_txt_ext* chunks = nullptr;
      status = ares_parse_txt_reply_ext(data, length, &chunks);
      std::unique_ptr<ares_txt_ext, AresFree> owner(chunks);
      if (Malformed(status)) return false;
      for (const ares_txt_ext* chunk = chunks; chunk != nullptr; chunk = chunk->next) {
        if (chunk->record_start || out.texts.empty()) out.texts.emplace_back();
        out.texts.back().append(reinterpret_cast<const char*>(chunk->txt), chunk->length);
      }
      break;
    }
    case DnsType::kMx: {
      ares_mx_reply* exchanges = nullptr;
      status = ares_parse_mx_reply(data, length, &exchanges);
      std::unique_ptr<ares_mx_reply, AresFree> owner(exchanges);
      if (Malformed(status)) return false;
      for (const ares_mx_reply* mx = exchanges; mx != nullptr; mx = mx->next) {
        out.texts.emplace_back(mx->host);
      }
      break;
    }
    case DnsType::kPtr: {
      // c-ares copies the address into the hostent only; the records are matched to the
      // question's name, so any address will do.
      const in_addr unused{};
      hostent* raw = nullptr;
      status = ares_parse_ptr_reply(data, length, &unused, sizeof unused, AF_INET, &raw);
      std::unique_ptr<hostent, HostentFree> host(raw);
      if (Malformed(status)) return false;
      // Every PTR name is in h_aliases, in the order received (h_name repeats one).
      for (char** alias = host ? host->h_aliases : nullptr; alias && *alias; ++alias) {
        out.texts.emplace_back(*alias);
      }
      break;
    }
  }
  const bool found = !out.addresses.empty() || !out.texts.empty();
  out.kind = found ? DnsRecords::Kind::kFound : DnsRecords::Kind::kEmpty;
  return true;
}

}  // namespace

std::string_view DnsTypeName(DnsType type) {
  switch (type) {
    case DnsType::kA:
      return "A";
    case DnsType::kPtr:
      return "PTR";
    case DnsType::kMx:
      return "MX";
    case DnsType::kTxt:
      return "TXT";
    case DnsType::kAaaa:
      return "AAAA";
  }
  return "?";
}

DnsRecords DnsRecords::Failed(std::string why) {
  DnsRecords records;
  records.kind = Kind::kFailed;
  records.error = std::move(why);
  return records;
}

DnsRecords ReadRecords(DnsType type, std::span<const uint8_t> message,
                       Seconds default_negative_ttl) {
  std::optional<Layout> layout = Walker(message).Read();
  if (!layout) return DnsRecords::Failed("malformed answer");
  if (layout->rcode != kRcodeNoError && layout->rcode != kRcodeNxDomain) {
    return DnsRecords::Failed(RcodeName(layout->rcode));
  }
  DnsRecords records;
  if (layout->rcode == kRcodeNoError) {
    if (!ParseRecords(type, message.data(), static_cast<int>(message.size()), records)) {
      return DnsRecords::Failed("malformed answer");
    }
    if (records.kind == DnsRecords::Kind::kFound) {
      if (type != DnsType::kA && type != DnsType::kAaaa) {
        records.ttl = layout->answer_ttl.value_or(Seconds(0));
      }
      return records;
    }
  }
  records = DnsRecords();
  records.kind =
      layout->rcode == kRcodeNxDomain ? DnsRecords::Kind::kNxDomain : DnsRecords::Kind::kEmpty;
  records.ttl = layout->negative_ttl.value_or(default_negative_ttl);
  return records;
}

}  // namespace greylight::reputation
