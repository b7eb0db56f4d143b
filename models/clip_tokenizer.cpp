#include "models/clip_tokenizer.h"

#include <glib.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/error.h"
#include "engine/json_file.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

// vocab.json's token -> id map, read as it is parsed (no JSON tree: 49,408 entries took
// 47 ms through one here, the first step's wait).
class VocabularyReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  VocabularyReader(const fs::path& path, std::unordered_map<std::string, int64_t>& vocab) : path_(path), vocab_(vocab) {}
  bool start_object(std::size_t) override {
    if (depth_ > 0) return not_an_integer();  // an object as a token's id
    depth_ = 1;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool key(string_t& token) override {
    token_ = std::move(token);
    return true;
  }
  bool number_integer(number_integer_t id) override { return add(id); }
  bool number_unsigned(number_unsigned_t id) override {
    return id <= uint64_t(std::numeric_limits<int64_t>::max()) ? add(int64_t(id)) : not_an_integer();
  }
  bool null() override { return not_an_integer(); }
  bool boolean(bool) override { return not_an_integer(); }
  bool number_float(number_float_t, const string_t&) override { return not_an_integer(); }
  bool string(string_t&) override { return not_an_integer(); }
  bool binary(binary_t&) override { return not_an_integer(); }
  bool start_array(std::size_t) override { return not_an_integer(); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw Error(path_.string() + ": not valid JSON: " + e.what());
  }

 private:
  bool add(int64_t id) {
    if (depth_ != 1) return not_a_map();
    vocab_[token_] = id;
    return true;
  }
  bool not_an_integer() {
    if (depth_ != 1) return not_a_map();
    throw Error(path_.string() + ": id of '" + token_ + "' is not an integer");
  }
  bool not_a_map() { throw Error(path_.string() + ": not a token map"); }

  const fs::path& path_;
  std::unordered_map<std::string, int64_t>& vocab_;
  std::string token_;
  int depth_ = 0;
};

void read_vocabulary(const fs::path& path, std::unordered_map<std::string, int64_t>& vocab) {
  vocab.reserve(65536);
  VocabularyReader reader(path, vocab);
  nlohmann::json::sax_parse(read_text_file(path), &reader);
  if (vocab.empty()) throw Error(path.string() + ": not a token map");
}

std::string utf8(gunichar c) {
  char buf[8];
  const int n = g_unichar_to_utf8(c, buf);
  return std::string(buf, n);
}

// Decodes UTF-8 (invalid bytes become U+FFFD, which the cleaning step drops).
std::vector<gunichar> code_points(const std::string& s) {
  std::vector<gunichar> out;
  const char* p = s.c_str();
  const char* end = p + s.size();
  while (p < end) {
    gunichar c = g_utf8_get_char_validated(p, end - p);
    if (c == static_cast<gunichar>(-1) || c == static_cast<gunichar>(-2)) {
      out.push_back(0xFFFD);
      ++p;
      continue;
    }
    out.push_back(c);
    p = g_utf8_next_char(p);
  }
  return out;
}

bool is_control_category(gunichar c) {
  switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL: case G_UNICODE_FORMAT: case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE: case G_UNICODE_SURROGATE:
      return true;
    default:
      return false;
  }
}

bool is_whitespace(gunichar c) {  // BasicTokenizer's _is_whitespace
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         g_unichar_type(c) == G_UNICODE_SPACE_SEPARATOR;
}

bool is_python_space(gunichar c) {  // str.split() separators that survive cleaning
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
         g_unichar_type(c) == G_UNICODE_SPACE_SEPARATOR ||
         g_unichar_type(c) == G_UNICODE_LINE_SEPARATOR ||
         g_unichar_type(c) == G_UNICODE_PARAGRAPH_SEPARATOR;
}

bool is_cjk(gunichar c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_punctuation(gunichar c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return true;
  switch (g_unichar_type(c)) {
    case G_UNICODE_CONNECT_PUNCTUATION: case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION: case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION: case G_UNICODE_OTHER_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool is_letter(gunichar c) {
  switch (g_unichar_type(c)) {
    case G_UNICODE_LOWERCASE_LETTER: case G_UNICODE_MODIFIER_LETTER: case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_TITLECASE_LETTER: case G_UNICODE_UPPERCASE_LETTER:
      return true;
    default:
      return false;
  }
}

bool is_number(gunichar c) {
  switch (g_unichar_type(c)) {
    case G_UNICODE_DECIMAL_NUMBER: case G_UNICODE_LETTER_NUMBER: case G_UNICODE_OTHER_NUMBER:
      return true;
    default:
      return false;
  }
}

// Python's str.lower() then _run_strip_accents (NFD, drop Mn).
std::string lower_strip_accents(const std::string& token) {
  gchar* lower = g_utf8_strdown(token.c_str(), -1);
  gchar* nfd = g_utf8_normalize(lower, -1, G_NORMALIZE_NFD);
  g_free(lower);
  std::string out;
  if (!nfd) return out;
  for (gunichar c : code_points(nfd))
    if (g_unichar_type(c) != G_UNICODE_NON_SPACING_MARK) out += utf8(c);
  g_free(nfd);
  return out;
}

std::vector<std::string> split_words(const std::vector<gunichar>& cps) {
  std::vector<std::string> words;
  std::string cur;
  for (gunichar c : cps) {
    if (is_python_space(c)) {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
    } else {
      cur += utf8(c);
    }
  }
  if (!cur.empty()) words.push_back(cur);
  return words;
}

std::string token_content(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

std::string basic_normalise(const std::string& text) {
  // _clean_text and _tokenize_chinese_chars
  std::vector<gunichar> cleaned;
  for (gunichar c : code_points(text)) {
    if (c == 0 || c == 0xFFFD) continue;
    if (c != '\t' && c != '\n' && c != '\r' && is_control_category(c)) continue;
    if (is_whitespace(c)) {
      cleaned.push_back(' ');
    } else if (is_cjk(c)) {
      cleaned.insert(cleaned.end(), {' ', c, ' '});
    } else {
      cleaned.push_back(c);
    }
  }
  std::string out;
  for (const std::string& word : split_words(cleaned)) {
    // lower + strip accents, then split on punctuation (each mark its own token)
    std::string piece;
    auto flush = [&] {
      if (!piece.empty()) out += (out.empty() ? "" : " ") + piece;
      piece.clear();
    };
    for (gunichar c : code_points(lower_strip_accents(word))) {
      if (is_punctuation(c)) {
        flush();
        piece = utf8(c);
        flush();
      } else if (is_python_space(c)) {  // lower-casing never makes spaces, but be safe
        flush();
      } else {
        piece += utf8(c);
      }
    }
    flush();
  }
  return out;
}

ClipTokenizer ClipTokenizer::load(const fs::path& dir, const std::string& pad_override) {
  ClipTokenizer t;
  const fs::path vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  read_vocabulary(vocab_path, t.vocab_);
  const std::string merges = read_text_file(merges_path);
  // As CLIPTokenizer: skip the version line, use at most 49152 - 256 - 2 merges.
  const int max_merges = 49152 - 256 - 2;
  t.merge_rank_.reserve(size_t(max_merges));
  size_t at = merges.find('\n');
  for (int rank = 0; rank < max_merges && at != std::string::npos && at + 1 < merges.size();) {
    const size_t begin = at + 1;
    at = merges.find('\n', begin);
    std::string_view line(merges.data() + begin, (at == std::string::npos ? merges.size() : at) - begin);
    if (line.empty()) continue;
    if (line.find(' ') == std::string_view::npos)
      throw Error(merges_path.string() + ": malformed line '" + std::string(line) + "'");
    t.merge_rank_.emplace(std::string(line), rank++);
  }

  // Special tokens: CLIP's defaults, overridden by the tokenizer's own files.
  std::string bos = "<|startoftext|>", eos = "<|endoftext|>", unk = "<|endoftext|>", pad = "<|endoftext|>";
  for (const char* file : {"tokenizer_config.json", "special_tokens_map.json"}) {
    std::error_code ec;
    if (!fs::exists(dir / file, ec)) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(dir / file));
    } catch (const nlohmann::json::exception& e) {
      throw Error((dir / file).string() + ": not valid JSON: " + e.what());
    }
    auto pick = [&](const char* key, std::string& into) {
      if (j.contains(key) && !token_content(j[key]).empty()) into = token_content(j[key]);
    };
    pick("bos_token", bos);
    pick("eos_token", eos);
    pick("unk_token", unk);
    pick("pad_token", pad);
    if (j.contains("model_max_length") && j["model_max_length"].is_number_integer() &&
        j["model_max_length"].get<int64_t>() < 100000)
      t.max_length_ = j["model_max_length"].get<int64_t>();
  }
  if (!pad_override.empty()) pad = pad_override;
  auto id_of = [&](const std::string& tok) {
    auto it = t.vocab_.find(tok);
    if (it == t.vocab_.end()) throw Error(vocab_path.string() + ": special token '" + tok + "' is not in the vocabulary");
    return it->second;
  };
  t.bos_ = id_of(bos);
  t.eos_ = id_of(eos);
  t.unk_ = id_of(unk);
  t.pad_ = id_of(pad);
  t.specials_ = {bos, eos, unk, pad};
  if (t.max_length_ < 2) throw Error((dir / "tokenizer_config.json").string() + ": model_max_length < 2");

  // GPT-2's byte-to-symbol table: printable bytes map to themselves, the rest to 256+n.
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t.byte_char_[b] = utf8(printable ? b : 256 + n++);
  }
  return t;
}

std::vector<std::string> ClipTokenizer::pre_tokenize(const std::string& text) const {
  // CLIP: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
  // (case-insensitive)
  const std::vector<gunichar> cps = code_points(text);
  std::vector<std::string> out;
  size_t i = 0;
  auto starts_with = [&](const char* lit) {
    size_t k = 0;
    for (; lit[k]; ++k)
      if (i + k >= cps.size() || g_unichar_tolower(cps[i + k]) != static_cast<gunichar>(lit[k])) return false;
    return true;
  };
  while (i < cps.size()) {
    const gunichar c = cps[i];
    if (g_unichar_isspace(c)) {
      ++i;
      continue;
    }
    size_t len = 0;
    for (const char* lit : {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"})
      if (starts_with(lit)) {
        len = std::strlen(lit);
        break;
      }
    if (len == 0 && is_letter(c)) {
      while (i + len < cps.size() && is_letter(cps[i + len])) ++len;
    } else if (len == 0 && is_number(c)) {
      len = 1;
    } else if (len == 0) {
      while (i + len < cps.size() && !g_unichar_isspace(cps[i + len]) && !is_letter(cps[i + len]) &&
             !is_number(cps[i + len]))
        ++len;
    }
    std::string tok;
    for (size_t k = 0; k < len; ++k) tok += utf8(cps[i + k]);
    out.push_back(tok);
    i += len;
  }
  return out;
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& token) const {
  auto cached = cache_.find(token);
  if (cached != cache_.end()) return cached->second;
  std::vector<std::string> word;
  for (unsigned char b : token) word.push_back(byte_char_[b]);
  if (word.empty()) return {};
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = std::numeric_limits<int>::max();
    std::string first, second;
    for (size_t k = 0; k + 1 < word.size(); ++k) {
      auto it = merge_rank_.find(word[k] + " " + word[k + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        first = word[k];
        second = word[k + 1];
      }
    }
    if (best == std::numeric_limits<int>::max()) break;
    std::vector<std::string> merged;
    for (size_t k = 0; k < word.size();) {
      if (k + 1 < word.size() && word[k] == first && word[k + 1] == second) {
        merged.push_back(first + second);
        k += 2;
      } else {
        merged.push_back(word[k++]);
      }
    }
    word.swap(merged);
  }
  cache_[token] = word;
  return word;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  auto encode_plain = [&](const std::string& chunk) {
    for (const std::string& tok : pre_tokenize(basic_normalise(chunk)))
      for (const std::string& piece : bpe(tok)) {
        auto it = vocab_.find(piece);
        ids.push_back(it == vocab_.end() ? unk_ : it->second);
      }
  };
  // Special-token strings are cut out first (earliest, then longest match) and kept whole.
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    size_t best_len = 0;
    for (const std::string& s : specials_)
      if (s.size() > best_len && text.compare(pos, s.size(), s) == 0) best_len = s.size();
    if (best_len == 0) {
      ++pos;
      continue;
    }
    encode_plain(text.substr(start, pos - start));
    ids.push_back(vocab_.at(text.substr(pos, best_len)));
    pos += best_len;
    start = pos;
  }
  encode_plain(text.substr(start));
  return ids;
}

ClipTokenizer::Padded ClipTokenizer::encode_padded(const std::string& text) const {
  std::vector<int64_t> body = encode(text);
  Padded out;
  out.untruncated_length = body.size() + 2;
  const size_t room = static_cast<size_t>(max_length_) - 2;
  if (body.size() > room) body.resize(room);
  out.ids.push_back(bos_);
  out.ids.insert(out.ids.end(), body.begin(), body.end());
  out.ids.push_back(eos_);
  out.ids.resize(static_cast<size_t>(max_length_), pad_);
  return out;
}

}  // namespace inpaint
