#!/usr/bin/env bash
# Sets Warren up on a fresh Debian 12 machine.
#   scripts/setup.sh run    install what is missing, build (Release), start warrend on its defaults
#   scripts/setup.sh test   install what is missing, build, run the whole test suite (ctest)
# Only Debian packages are installed (apt-get); nothing is downloaded from anywhere else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

mode="${1:-}"
case "$mode" in
  run|test) ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

build_pkgs=(g++ cmake ninja-build ccache python3 libcaf-dev libboost-dev libsqlite3-dev
            libspdlog-dev catch2 prometheus-cpp-dev nlohmann-json3-dev amqp-specs libssl-dev)
test_pkgs=(python3-pika python3-amqp python3-stomp amqp-tools libnet-stomp-perl procps iproute2
           prometheus chromium openssl faketime systemd
           python3-celery python3-aioamqp php-cli php-amqplib php-amqp php-stomp
           nagios-plugins-rabbitmq
           default-jdk-headless librabbitmq-client-java ruby ruby-stomp libanyevent-rabbitmq-perl
           golang-go golang-github-rabbitmq-amqp091-go-dev)

pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The management tests drive Warren with rabbitmqadmin, the HTTP API's own client. Debian ships it
# only inside rabbitmq-server, so the package is downloaded (not installed: no RabbitMQ is set up
# or started) and just that one script is taken out of it.
admin_tool=tests/.tools/rabbitmqadmin
if [ "$mode" = test ] && [ ! -f "$admin_tool" ]; then
  echo "fetching rabbitmqadmin from Debian's rabbitmq-server package"
  dl="$(mktemp -d)"
  if ! (cd "$dl" && apt-get download -qq rabbitmq-server); then
    "${sudo_cmd[@]}" apt-get update -qq   # no package lists yet
    (cd "$dl" && apt-get download -qq rabbitmq-server)
  fi
  dpkg-deb --fsys-tarfile "$dl"/rabbitmq-server_*.deb | tar -x -C "$dl" ./usr/bin/rabbitmqadmin
  mkdir -p "$(dirname "$admin_tool")"
  install -m 0755 "$dl/usr/bin/rabbitmqadmin" "$admin_tool"
  rm -rf "$dl"
fi

jobs="$(nproc)"
if [ "$mode" = run ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
  cmake --build build -j "$jobs"
  exec build/bin/warrend
fi

cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-test -j "$jobs"
cd build-test
ctest --output-on-failure --timeout 600 -j 1
