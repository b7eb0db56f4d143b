// The one exception type of the project: its message names the file, tensor or
// parameter at fault, so the CLI and the plug-in can show it as it is.
#pragma once
#include <stdexcept>
#include <string>

namespace inpaint {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace inpaint
