// What we may delete or overwrite, in one place: only entries inside our own folders,
// named by a plain name; only files we wrote ourselves; never an input of the same run.
// Every deletion and every replaced output in the project goes through these checks.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace inpaint {

// Throws Error unless `name` is one plain path component: not empty, ".", "..", and
// without '/' (an absolute or nested path never names an entry of one of our folders).
void require_plain_name(const std::string& name, const std::string& what);

// Whether `inner` is `outer` or lies inside it, by their real locations (symlinks, "."
// and ".." resolved; a missing tail compared as spelled).
bool is_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

// Whether `a` and `b` are the same existing file by identity (device and inode): hard
// links, symlinks and other spellings of one file are the same.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

// Removes the entry `name` of `dir` (a file, a folder with its contents, or only the link
// when it is a symlink: never a link's target) after checking that `name` is a plain name
// and the entry really lies in `dir`. Returns whether there was one. Throws Error.
bool remove_entry(const std::filesystem::path& dir, const std::string& name);

// Checks an output file before any work: refuses (Error naming `option`) an empty path,
// an existing path that is not a regular file (folder, device, FIFO, /dev/stdout), a
// missing or unwritable folder, and a file that is one of `inputs` ({option, path}) by
// identity.
void check_output_file(const std::filesystem::path& path, const std::string& option,
                       const std::vector<std::pair<std::string, std::filesystem::path>>& inputs);

// The file a write to `path` replaces: a symlink's final target (the link stays a link,
// as the user made it), otherwise `path` itself.
std::filesystem::path write_target(const std::filesystem::path& path);

// A name beside `path` for this process to write into before renaming it into place:
// "<path>.<pid>.partial". Stale ones are recognised by partial_owner().
std::filesystem::path partial_name(const std::filesystem::path& path);

// The process id in a name made by partial_name(), or 0 when `name` is not one.
long partial_owner(const std::string& name);

// Removes the entries of `dir` that partial_name() made for processes no longer running
// (left by a crash or kill -9); how many. Only for our own folders (the caches).
int remove_stale_partials(const std::filesystem::path& dir);

// Writes `text` to `path` through a partial file renamed into place: readers see the old
// file or the whole new one, never a part. Throws Error naming the file and the reason.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace inpaint
