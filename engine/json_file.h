// JSON as Python writes it: json.dumps emits Infinity, -Infinity and NaN for floats
// (diffusers scheduler configs can hold -Infinity). They are read as the strings
// "Infinity", "-Infinity" and "NaN"; ConfigReader::number turns them back into doubles.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace inpaint {

nlohmann::json parse_python_json(const std::string& text, const std::string& label);
nlohmann::json read_json_file(const std::filesystem::path& path);  // throws Error naming it

// A small file's bytes (configs, tokenizer files): only a regular file (a FIFO would
// block for ever) of at most `max_bytes`. Throws Error naming the file and the reason.
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = size_t(64) << 20);

}  // namespace inpaint
