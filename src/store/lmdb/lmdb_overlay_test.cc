#include "store/lmdb/lmdb_overlay.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>

namespace greylight::store {
namespace {

// What a model map holds for a key: absent, or the value to put (nullopt: a deletion).
using Model = std::map<std::string, std::optional<std::string>>;

std::optional<std::optional<std::string>> Held(const LmdbOverlay& overlay, std::string_view key,
                                               uint64_t hash) {
  const LmdbOverlay::Entry* entry = overlay.Find(key, hash);
  if (entry == nullptr) return std::nullopt;
  EXPECT_EQ(entry->key(), key);
  std::optional<std::string_view> value = entry->value();
  return value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
}

Model Contents(const LmdbOverlay& overlay) {
  Model contents;
  for (const LmdbOverlay::Entry& entry : overlay.entries()) {
    if (entry.erased()) continue;
    std::optional<std::string_view> value = entry.value();
    EXPECT_TRUE(contents
                    .emplace(std::string(entry.key()),
                             value ? std::optional<std::string>(std::string(*value)) : std::nullopt)
                    .second)
        << "a key listed twice: " << entry.key();
  }
  return contents;
}

TEST(LmdbOverlayTest, HoldsPutsAndDeletionsUntilErasedOrCleared) {
  LmdbOverlay overlay;
  const uint64_t a = LmdbOverlay::Hash("a"), b = LmdbOverlay::Hash("b");
  EXPECT_TRUE(overlay.empty());
  EXPECT_EQ(overlay.Find("a", a), nullptr);
  overlay.Put("a", a, "1");
  overlay.Put("b", b, std::nullopt);
  EXPECT_EQ(Held(overlay, "a", a), std::optional<std::string>("1"));
  EXPECT_EQ(Held(overlay, "b", b), std::optional<std::optional<std::string>>(std::in_place));
  overlay.Put("a", a, "22");
  EXPECT_EQ(Held(overlay, "a", a), std::optional<std::string>("22"));
  overlay.Erase("a", a);
  EXPECT_EQ(overlay.Find("a", a), nullptr);
  EXPECT_EQ(Contents(overlay), (Model{{"b", std::nullopt}}));
  overlay.Put("a", a, "");
  EXPECT_EQ(Held(overlay, "a", a), std::optional<std::string>(""));
  EXPECT_EQ(overlay.size(), 2u);
  overlay.Clear();
  EXPECT_TRUE(overlay.empty());
  EXPECT_EQ(overlay.Find("a", a), nullptr);
  EXPECT_EQ(overlay.Find("b", b), nullptr);
}

// Keys whose hashes are equal, or equal in the slot and the tag, are told apart by the key.
TEST(LmdbOverlayTest, TellsKeysWithTheSameHashApart) {
  LmdbOverlay overlay;
  for (int i = 0; i < 3000; ++i) overlay.Put(fmt::format("key{}", i), 42, fmt::format("v{}", i));
  for (int i = 0; i < 3000; ++i) {
    EXPECT_EQ(Held(overlay, fmt::format("key{}", i), 42),
              std::optional<std::string>(fmt::format("v{}", i)));
  }
  EXPECT_EQ(overlay.Find("key3000", 42), nullptr);
  EXPECT_EQ(overlay.Find("key1", 43), nullptr);
}

// What Find returns stays valid while the overlay grows and moves its index.
TEST(LmdbOverlayTest, ViewsStayValidUntilCleared) {
  LmdbOverlay overlay;
  const std::string big(200'000, 'x');  // larger than a block of bytes
  overlay.Put("first", LmdbOverlay::Hash("first"), "value");
  overlay.Put("big", LmdbOverlay::Hash("big"), big);
  const LmdbOverlay::Entry* first = overlay.Find("first", LmdbOverlay::Hash("first"));
  ASSERT_NE(first, nullptr);
  const std::string_view key = first->key(), value = *first->value();
  const std::string_view big_value = *overlay.Find("big", LmdbOverlay::Hash("big"))->value();
  for (int i = 0; i < 50'000; ++i) {
    const std::string k = fmt::format("triplet/{}/sender{}@example.org/rcpt", i, i);
    overlay.Put(k, LmdbOverlay::Hash(k), std::string(40, 'v'));
  }
  EXPECT_EQ(key, "first");
  EXPECT_EQ(value, "value");
  EXPECT_EQ(big_value, big);
}

// Random updates, erasures and clears against a std::map, over several rounds so that the
// kept memory is reused and given back.
TEST(LmdbOverlayTest, AgreesWithAMapOverRandomUpdates) {
  std::mt19937 random(7);
  LmdbOverlay overlay;
  for (int round = 0; round < 6; ++round) {
    Model model;
    // Rounds of very different sizes: the memory of a big one is reused, then given back.
    const int operations = round % 2 == 0 ? 40'000 : 300;
    const int keys = operations / 2;
    for (int i = 0; i < operations; ++i) {
      const std::string key = fmt::format("k{}", random() % keys);
      const uint64_t hash = LmdbOverlay::Hash(key);
      switch (random() % 4) {
        case 0:
        case 1: {
          std::string value(random() % 40, static_cast<char>('a' + random() % 26));
          overlay.Put(key, hash, value);
          model[key] = value;
          break;
        }
        case 2:
          overlay.Put(key, hash, std::nullopt);
          model[key] = std::nullopt;
          break;
        case 3:
          overlay.Erase(key, hash);
          model.erase(key);
          break;
      }
    }
    ASSERT_EQ(Contents(overlay), model) << "round " << round;
    for (int k = 0; k < keys; ++k) {
      const std::string key = fmt::format("k{}", k);
      auto it = model.find(key);
      EXPECT_EQ(
          Held(overlay, key, LmdbOverlay::Hash(key)),
          it == model.end() ? std::nullopt : std::optional<std::optional<std::string>>(it->second))
          << key;
    }
    overlay.Clear();
    EXPECT_TRUE(overlay.empty());
    EXPECT_TRUE(Contents(overlay).empty());
  }
}

}  // namespace
}  // namespace greylight::store
