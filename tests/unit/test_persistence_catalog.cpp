// The catalog: round trip of every row kind across a reopen, upserts, the cascades of
// deleting an exchange, a queue, a vhost and a user, queue file names, and the checksum
// primitives (CRC-32 and SHA-256 against published test vectors).
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <tuple>

#include "persistence/catalog.hpp"
#include "persistence/checksum.hpp"

using namespace warren::persistence;
namespace fs = std::filesystem;

namespace {

struct temp_dir : warren::test::temp_dir {
  temp_dir() : warren::test::temp_dir("warren-catalog") {}
};

catalog_snapshot load_all(catalog& c) {
  catalog_snapshot s;
  std::string error;
  REQUIRE(c.load(s, error));
  return s;
}

}  // namespace

TEST_CASE("crc32 and sha256 match their test vectors", "[persistence]") {
  CHECK(crc32_update(0, std::string_view{"123456789"}) == 0xCBF43926u);
  CHECK(crc32_update(0, std::string_view{""}) == 0u);
  std::string long_input(1000, 'x');
  for (size_t i = 0; i < long_input.size(); ++i) long_input[i] = static_cast<char>(i * 7);
  uint32_t split = crc32_update(crc32_update(0, std::string_view{long_input}.substr(0, 333)),
                                std::string_view{long_input}.substr(333));
  CHECK(split == crc32_update(0, std::string_view{long_input}));

  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("queue file names are stable, distinct and file-system safe", "[persistence]") {
  std::string a = queue_file_name("/", "orders");
  CHECK(a == queue_file_name("/", "orders"));
  CHECK(a.rfind("queues/", 0) == 0);
  CHECK(a.size() > 10);
  CHECK(a.substr(a.size() - 10) == "-orders.db");
  CHECK(a != queue_file_name("/other", "orders"));
  CHECK(queue_file_name("a", "bc") != queue_file_name("ab", "c"));
  std::string odd = queue_file_name("/", std::string{"../x/\0y\xff z", 10} + std::string(100, 'q'));
  CHECK(odd.find('/', 7) == std::string::npos);
  CHECK(odd.find('\0') == std::string::npos);
  CHECK(odd.size() < 7 + 24 + 1 + 40 + 3 + 1);
  CHECK(queue_file_name("/", "") != queue_file_name("/x", ""));
}

TEST_CASE("catalog round trip of every row kind survives a reopen", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "data/catalog.db";
  std::string error;
  std::string binary_args{"\x00\x01\x02\xff", 4};
  {
    catalog c;
    REQUIRE(c.open(path, error));
    REQUIRE(c.put_vhost({"/"}, error));
    REQUIRE(c.put_vhost({"prod"}, error));
    REQUIRE(c.put_vhost({"/"}, error));  // idempotent
    REQUIRE(c.put_user({"guest", "hash1", "administrator"}, error));
    REQUIRE(c.put_permission({"guest", "/", ".*", ".*", "^amq\\."}, error));
    REQUIRE(c.put_exchange({"/", "logs", "topic", true, false, false, binary_args}, error));
    REQUIRE(c.put_exchange({"prod", "int", "direct", true, true, true, ""}, error));
    queue_row q{"/", "orders", true, false, binary_args, "", 42};
    REQUIRE(c.put_queue(q, error));
    REQUIRE(c.put_binding({"/", "logs", "orders", false, "a.#", binary_args}, error));
    REQUIRE(c.put_binding({"/", "logs", "orders", false, "a.#", binary_args}, error));
    REQUIRE(c.check(error));
    CHECK(error == "ok");
  }
  catalog c;
  REQUIRE(c.open(path, error));
  auto s = load_all(c);
  REQUIRE(s.vhosts.size() == 2);
  CHECK(s.vhosts[0].name == "/");
  CHECK(s.vhosts[1].name == "prod");
  REQUIRE(s.users.size() == 1);
  CHECK(s.users[0].password_hash == "hash1");
  CHECK(s.users[0].tags == "administrator");
  REQUIRE(s.permissions.size() == 1);
  CHECK(s.permissions[0].read == "^amq\\.");
  REQUIRE(s.exchanges.size() == 2);
  CHECK(s.exchanges[0].name == "logs");
  CHECK(s.exchanges[0].type == "topic");
  CHECK(s.exchanges[0].arguments == binary_args);
  CHECK(s.exchanges[1].auto_delete);
  CHECK(s.exchanges[1].internal);
  REQUIRE(s.queues.size() == 1);
  CHECK(s.queues[0].name == "orders");
  CHECK(s.queues[0].durable);
  CHECK_FALSE(s.queues[0].auto_delete);
  CHECK(s.queues[0].arguments == binary_args);
  CHECK(s.queues[0].file == queue_file_name("/", "orders"));
  CHECK(s.queues[0].message_count_hint == 42);
  REQUIRE(s.bindings.size() == 1);
  CHECK(s.bindings[0].key == "a.#");
  CHECK(s.bindings[0].arguments == binary_args);
  CHECK_FALSE(s.bindings[0].to_exchange);
}

TEST_CASE("catalog upserts replace and hints update", "[persistence]") {
  temp_dir dir;
  std::string error;
  catalog c;
  REQUIRE(c.open(dir / "catalog.db", error));
  REQUIRE(c.put_exchange({"/", "x", "direct", true, false, false, ""}, error));
  REQUIRE(c.put_exchange({"/", "x", "fanout", true, false, false, "a"}, error));
  REQUIRE(c.put_user({"u", "h1", ""}, error));
  REQUIRE(c.put_user({"u", "h2", "monitoring"}, error));
  REQUIRE(c.put_queue({"/", "q", true, false, "", "queues/custom.db", 1}, error));
  REQUIRE(c.set_message_count_hint("/", "q", 99, error));
  // Two queues may not share a file.
  CHECK_FALSE(c.put_queue({"/", "q2", true, false, "", "queues/custom.db", 0}, error));
  CHECK_FALSE(error.empty());
  auto s = load_all(c);
  REQUIRE(s.exchanges.size() == 1);
  CHECK(s.exchanges[0].type == "fanout");
  CHECK(s.exchanges[0].arguments == "a");
  CHECK(s.users[0].password_hash == "h2");
  REQUIRE(s.queues.size() == 1);
  CHECK(s.queues[0].file == "queues/custom.db");
  CHECK(s.queues[0].message_count_hint == 99);
}

TEST_CASE("catalog deletes cascade", "[persistence]") {
  temp_dir dir;
  std::string error;
  catalog c;
  REQUIRE(c.open(dir / "catalog.db", error));
  for (std::string vh : {"/", "other"}) {
    REQUIRE(c.put_vhost({vh}, error));
    REQUIRE(c.put_exchange({vh, "x", "direct", true, false, false, ""}, error));
    REQUIRE(c.put_exchange({vh, "y", "fanout", true, false, false, ""}, error));
    REQUIRE(c.put_queue({vh, "q", true, false, "", "", 0}, error));
    REQUIRE(c.put_queue({vh, "x", true, false, "", "", 0}, error));  // same name as exchange x
    REQUIRE(c.put_binding({vh, "x", "q", false, "k", ""}, error));
    REQUIRE(c.put_binding({vh, "y", "x", true, "k", ""}, error));   // y -> exchange x
    REQUIRE(c.put_binding({vh, "y", "x", false, "k", ""}, error));  // y -> queue x
    REQUIRE(c.put_binding({vh, "y", "q", false, "k2", ""}, error));
  }
  REQUIRE(c.put_user({"u", "h", ""}, error));
  REQUIRE(c.put_permission({"u", "/", ".*", ".*", ".*"}, error));
  REQUIRE(c.put_permission({"u", "other", ".*", ".*", ".*"}, error));

  SECTION("exchange: bindings from it and to it as an exchange") {
    REQUIRE(c.delete_exchange("/", "x", error));
    auto s = load_all(c);
    CHECK(s.exchanges.size() == 3);
    size_t in_root = 0;
    for (auto& b : s.bindings)
      if (b.vhost == "/") {
        ++in_root;
        CHECK_FALSE((b.source == "x" || (b.destination == "x" && b.to_exchange)));
      }
    CHECK(in_root == 2);  // y -> queue x and y -> q remain
    CHECK(s.bindings.size() == 6);
  }
  SECTION("queue: bindings to it as a queue") {
    REQUIRE(c.delete_queue("/", "x", error));
    auto s = load_all(c);
    CHECK(s.queues.size() == 3);
    for (auto& b : s.bindings)
      if (b.vhost == "/") CHECK_FALSE((b.destination == "x" && !b.to_exchange));
    CHECK(s.bindings.size() == 7);
  }
  SECTION("binding") {
    REQUIRE(c.delete_binding({"/", "y", "x", true, "k", ""}, error));
    CHECK(load_all(c).bindings.size() == 7);
    REQUIRE(c.delete_binding({"/", "y", "x", true, "nope", ""}, error));
    CHECK(load_all(c).bindings.size() == 7);
  }
  SECTION("vhost: everything in it, and the files of its queues are reported") {
    std::vector<std::string> files;
    REQUIRE(c.delete_vhost("/", error, &files));
    CHECK(files == std::vector<std::string>{queue_file_name("/", "q"), queue_file_name("/", "x")});
    auto s = load_all(c);
    REQUIRE(s.vhosts.size() == 1);
    CHECK(s.exchanges.size() == 2);
    CHECK(s.queues.size() == 2);
    CHECK(s.bindings.size() == 4);
    REQUIRE(s.permissions.size() == 1);
    CHECK(s.permissions[0].vhost == "other");
    for (auto& q : s.queues) CHECK(q.vhost == "other");
  }
  SECTION("user: and its permissions") {
    REQUIRE(c.delete_user("u", error));
    auto s = load_all(c);
    CHECK(s.users.empty());
    CHECK(s.permissions.empty());
  }
  SECTION("permission") {
    REQUIRE(c.delete_permission("u", "other", error));
    auto s = load_all(c);
    REQUIRE(s.permissions.size() == 1);
    CHECK(s.permissions[0].vhost == "/");
  }
}

TEST_CASE("catalog keeps the deletions of a cluster node, the later stamp of each",
          "[persistence]") {
  temp_dir dir;
  std::string error;
  std::string binding_key{"x\0q\0qk\0", 7};  // bytes, NULs included
  {
    catalog c;
    REQUIRE(c.open(dir / "catalog.db", error));
    REQUIRE(c.put_vhost({"/"}, error));
    REQUIRE(c.put_vhost({"other"}, error));
    REQUIRE(c.put_deletion({"/", "exchange", "gone", 20}, error));
    REQUIRE(c.put_deletion({"/", "exchange", "gone", 10}, error));  // older: the 20 stays
    REQUIRE(c.put_deletion({"/", "queue", "gone", 30}, error));     // same name, other kind
    REQUIRE(c.put_deletion({"/", "binding", binding_key, 40}, error));
    REQUIRE(c.put_deletion({"other", "exchange", "gone", 50}, error));
    REQUIRE(c.put_deletion({"", "registry", std::string{"user\0u\0", 7}, 60}, error));
  }
  catalog c;
  REQUIRE(c.open(dir / "catalog.db", error));  // across a reopen
  auto stamps = [&] {
    std::vector<std::tuple<std::string, std::string, std::string, uint64_t>> out;
    for (auto& d : load_all(c).deletions)
      out.emplace_back(d.scope, d.kind, d.key, d.stamp);
    return out;
  };
  using row = std::tuple<std::string, std::string, std::string, uint64_t>;
  CHECK(stamps() == std::vector<row>{{"", "registry", std::string{"user\0u\0", 7}, 60},
                                     {"/", "binding", binding_key, 40},
                                     {"/", "exchange", "gone", 20},
                                     {"/", "queue", "gone", 30},
                                     {"other", "exchange", "gone", 50}});
  SECTION("one goes") {
    REQUIRE(c.delete_deletion({"/", "queue", "gone", 0}, error));
    CHECK(stamps().size() == 4);
  }
  SECTION("the old ones go") {
    REQUIRE(c.prune_deletions(40, error));
    CHECK(stamps() == std::vector<row>{{"", "registry", std::string{"user\0u\0", 7}, 60},
                                       {"/", "binding", binding_key, 40},
                                       {"other", "exchange", "gone", 50}});
  }
  SECTION("a deleted vhost's go with it, the registry's stay") {
    REQUIRE(c.delete_vhost("/", error));
    CHECK(stamps() == std::vector<row>{{"", "registry", std::string{"user\0u\0", 7}, 60},
                                       {"other", "exchange", "gone", 50}});
  }
}

TEST_CASE("catalog keeps names byte for byte and refuses foreign files", "[persistence]") {
  temp_dir dir;
  std::string error;
  std::string name{"caf\xc3\xa9\x00\xfe", 6};
  {
    catalog c;
    REQUIRE(c.open(dir / "catalog.db", error));
    REQUIRE(c.put_queue({"/", name, true, false, "", "", 0}, error));
    auto s = load_all(c);
    REQUIRE(s.queues.size() == 1);
    CHECK(s.queues[0].name == name);
  }
  {
    std::ofstream garbage{dir / "garbage.db", std::ios::binary};
    garbage << std::string(8192, 'G');
  }
  catalog c;
  CHECK_FALSE(c.open(dir / "garbage.db", error));
  CHECK(error.find("garbage.db") != std::string::npos);
}
