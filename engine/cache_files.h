// What the caches on disk share (engine/lora_cache.h, engine/packed_cache.h): where they
// live, names that change when their inputs do, and pruning to the entries used last.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace inpaint {

// $INPAINT_CACHE, else $XDG_CACHE_HOME/inpaint, else ~/.cache/inpaint.
std::filesystem::path cache_root();

// A path with symbolic links, "." and ".." resolved and made absolute (as given where
// that fails): one name for one file or folder in the caches' names.
std::filesystem::path resolved_path(const std::filesystem::path& path);

// A file's resolved path, size and modification time: a changed file reads differently.
std::string file_identity(const std::filesystem::path& file);

// 16 hex digits from `text` (FNV-1a), the same across runs and builds.
std::string stable_name(const std::string& text);

// Removes all but the `keep` entries of `dir` used last, by the modification time of
// used_stamp(entry) (an entry whose stamp is missing counts as oldest). Only entries
// whose name `ours` accepts are counted or removed: nothing else in the folder is touched.
void keep_used_last(const std::filesystem::path& dir, int keep, const std::function<bool(const std::string&)>& ours,
                    const std::function<std::filesystem::path(const std::filesystem::path&)>& used_stamp);

// Says once on stderr why a cache entry is not used ("inpaint: <what> <entry> <why>:
// deleted, <then>") and deletes it (a file, or a folder and its contents), so that the
// next run writes a sound one.
void discard_entry(const std::filesystem::path& entry, const std::string& what, const std::string& why,
                   const std::string& then);

// Whether `dir` has room for `bytes` more and a margin for everything else.
bool has_room(const std::filesystem::path& dir, double bytes);

}  // namespace inpaint
