// spdlog set-up: console (stderr) and optionally a file, one format, one level.
#pragma once

#include <string>

namespace warren {

void setup_logging(const std::string& level, const std::string& file);

}  // namespace warren
