// warrenctl: Warren's command-line tool, in the manner of rabbitmqctl, talking to warrend's
// HTTP management API. Parses the common options (anywhere on the line), finds the command
// and runs it; `warrenctl --help` lists the commands, `warrenctl <command> --help` explains one.
#include <cstring>
#include <iostream>

#include "tools/warrenctl/commands.hpp"

namespace {

using namespace warrenctl;

const char* common_options = R"(Common options (anywhere on the line):
  --host H            broker host (default 127.0.0.1)
  --http-port N       port of warrend's HTTP API (default 15672)
  --https             HTTPS (management.ssl.port); the broker's certificate is verified
  --cacert FILE       verify it against these CAs (default: the system's)
  --user U            user name (default guest); also --username
  --password P        password (default guest)
  -p, --vhost V       virtual host for commands that use one (default /)
  --no-table-headers  list_* commands print rows only
  -q, --quiet         no informational lines on stderr
  --timeout S         seconds to wait for the broker (default 30)
  --help              this text, or the command's help after a command
)";

void general_help() {
  std::cout << "Usage: warrenctl [options] <command> [arguments]\n\n"
               "Manages a Warren broker through its HTTP API.\n\nCommands:\n";
  for (auto& c : commands())
    std::cout << "  " << c.name << std::string(20 - std::min<size_t>(19, strlen(c.name)), ' ')
              << c.summary << "\n";
  std::cout << "\n" << common_options;
}

void command_help(const command& c) {
  std::cout << "Usage: warrenctl [options] " << c.name << " " << c.usage << "\n\n"
            << c.summary << "\n\n"
            << common_options;
}

}  // namespace

int main(int argc, char** argv) {
  invocation inv;
  std::string name;
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      auto eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) {
        std::cerr << "warrenctl: " << a << " needs a value\n";
        return false;
      }
      out = argv[++i];
      return true;
    };
    auto is = [&](const char* opt) {
      return a == opt || a.rfind(std::string{opt} + "=", 0) == 0;
    };
    bool ok = true;
    std::string timeout;
    if (a == "--help" || a == "-h" || (a == "help" && name.empty()))
      help = true;
    else if (is("--host"))
      ok = value(inv.ep.host);
    else if (is("--http-port") || is("--port"))
      ok = value(inv.ep.port);
    else if (a == "--https")
      inv.ep.https = true;
    else if (is("--cacert"))
      ok = value(inv.ep.cacert), inv.ep.https = true;
    else if (is("--user") || is("--username") || a == "-u")
      ok = value(inv.ep.user);
    else if (is("--password"))
      ok = value(inv.ep.password);
    else if (is("--vhost") || a == "-p")
      ok = value(inv.vhost);
    else if (is("--timeout") || a == "-t") {
      ok = value(timeout);
      if (ok) {
        try {
          inv.ep.timeout_s = std::stoi(timeout);
        } catch (...) {
          std::cerr << "warrenctl: invalid --timeout " << timeout << "\n";
          return exit_usage;
        }
      }
    } else if (a == "--no-table-headers")
      inv.table_headers = false;
    else if (a == "-q" || a == "--quiet")
      inv.quiet = true;
    else if (a.size() > 1 && a[0] == '-' && a.find('=') == std::string::npos && name.empty()) {
      std::cerr << "warrenctl: unknown option " << a << "\n";
      return exit_usage;
    } else if (name.empty())
      name = a;
    else
      inv.args.push_back(a);
    if (!ok)
      return exit_usage;
  }
  if (name.empty()) {
    general_help();
    return help ? exit_ok : exit_usage;
  }
  for (auto& c : commands()) {
    if (name != c.name)
      continue;
    if (help) {
      command_help(c);
      return exit_ok;
    }
    return c.run(inv);
  }
  std::cerr << "warrenctl: unknown command '" << name << "' (see warrenctl --help)\n";
  return exit_usage;
}
