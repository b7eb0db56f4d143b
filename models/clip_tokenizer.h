// CLIP's byte-level BPE tokenizer, normalising text as transformers 4.30's slow
// CLIPTokenizer does without ftfy (its BasicTokenizer fallback): clean control
// characters, isolate CJK characters, lower-case, strip accents, split punctuation;
// then CLIP's pre-tokenising regex and BPE. Special-token strings in the text (BOS,
// EOS, and the pad token, "!" for SD 2.x) stay whole, as in transformers.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace inpaint {

class ClipTokenizer {
 public:
  // Reads vocab.json and merges.txt (+ special_tokens_map.json / tokenizer_config.json
  // for the pad token and length). `pad_override` replaces the pad token when set.
  static ClipTokenizer load(const std::filesystem::path& dir, const std::string& pad_override = "");

  // Token ids of the text without BOS/EOS, untruncated.
  std::vector<int64_t> encode(const std::string& text) const;

  struct Padded {
    std::vector<int64_t> ids;  // exactly max_length: BOS ... EOS pad...
    size_t untruncated_length;  // with BOS and EOS
    bool truncated() const { return untruncated_length > ids.size(); }
  };
  // As the SD pipelines call it: padding="max_length", truncation=True.
  Padded encode_padded(const std::string& text) const;

  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  int64_t max_length() const { return max_length_; }

 private:
  std::vector<std::string> bpe(const std::string& token) const;
  std::vector<std::string> pre_tokenize(const std::string& normalised) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int> merge_rank_;  // "first second" -> rank
  std::vector<std::string> specials_;                // strings kept whole
  int64_t bos_ = 0, eos_ = 0, pad_ = 0, unk_ = 0, max_length_ = 77;
  std::string byte_char_[256];                       // byte -> UTF-8 of its BPE symbol
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

// transformers' BasicTokenizer(do_lower_case=True) output joined by spaces.
std::string basic_normalise(const std::string& text);

}  // namespace inpaint
