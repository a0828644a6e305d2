// The web page's static files (web/), compiled into warrend: the build generates
// web_assets.cpp with their bytes (cmake/embed_web.cmake), so nothing is read or built at
// run time.
#pragma once

#include <string_view>

namespace warren::mgmt {

struct web_asset {
  std::string_view path;  // "/index.html"
  std::string_view content_type;
  std::string_view data;
};

// nullptr when no file has that path.
const web_asset* find_web_asset(std::string_view path);

}  // namespace warren::mgmt
