#include "engine/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <fcntl.h>
#include <png.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/error.h"
#include "engine/own_files.h"

namespace fs = std::filesystem;

namespace inpaint {
namespace {

// A PNG's size from its IHDR chunk (0x0 when it is not a PNG): stb refuses very large
// ones without saying so (its last reason is "unknown image type").
std::pair<uint64_t, uint64_t> png_header_size(const fs::path& path) {
  unsigned char h[24] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return {0, 0};
  const size_t n = std::fread(h, 1, sizeof h, f);
  std::fclose(f);
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < sizeof h || std::memcmp(h, signature, 8) != 0 || std::memcmp(h + 12, "IHDR", 4) != 0) return {0, 0};
  auto be32 = [&](int at) { return uint64_t(h[at]) << 24 | uint64_t(h[at + 1]) << 16 | uint64_t(h[at + 2]) << 8 | h[at + 3]; };
  return {be32(16), be32(20)};
}

std::string why_not(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "no such file";
  if (!fs::is_regular_file(path, ec)) return "not a regular file";
  const auto [w, h] = png_header_size(path);
  if (w > kMaxImageSide || h > kMaxImageSide || w * h > kMaxImagePixels)
    return "a PNG of " + std::to_string(w) + "x" + std::to_string(h) + " pixels: too large (at most " +
           std::to_string(kMaxImagePixels / 1000000) + " megapixels and " + std::to_string(kMaxImageSide) + " pixels a side)";
  const char* reason = stbi_failure_reason();
  return std::string("not a readable PNG or JPEG image") + (reason ? " (" + std::string(reason) + ")" : "");
}

// Opens a file of this process's own beside `path`, refusing to follow or reuse anything.
std::FILE* open_partial(const fs::path& partial) {
  std::error_code ec;
  fs::remove(partial, ec);  // this process's own name: left by a dead process with our PID
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) ::close(fd);
  return f;
}

void write_to_file(void* context, void* data, int size) {
  auto* f = static_cast<std::FILE*>(context);
  if (size > 0) std::fwrite(data, 1, size_t(size), f);
}

// A 16-bit PNG through libpng (stb writes 8-bit only). False on any failure.
bool write_png16(std::FILE* f, const Image& img, const std::vector<uint16_t>& samples) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  static const int kColour[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), 16, kColour[img.channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_set_swap(png);  // our samples are little-endian, PNG's big-endian
  const size_t row = size_t(img.width) * size_t(img.channels);
  for (int y = 0; y < img.height; ++y)
    png_write_row(png, reinterpret_cast<png_const_bytep>(samples.data() + size_t(y) * row));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

// stb opens with fopen, which waits for ever on a FIFO: only regular files go to it.
void require_regular(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(path.string() + ": " + why_not(path));
}

}  // namespace

std::pair<int, int> image_size(const fs::path& path) {
  require_regular(path);
  // A PNG's size from its header as written (stb versions differ in what they check
  // before they say), so that a size too large is said before anything is decoded.
  const auto [pw, ph] = png_header_size(path);
  if (pw > 0 && ph > 0) {
    if (pw > kMaxImageSide || ph > kMaxImageSide || pw * ph > kMaxImagePixels) throw Error(path.string() + ": " + why_not(path));
    return {int(pw), int(ph)};
  }
  int w = 0, h = 0, c = 0;
  if (!stbi_info(path.c_str(), &w, &h, &c)) throw Error(path.string() + ": " + why_not(path));
  return {w, h};
}

std::pair<int, bool> image_channels(const fs::path& path) {
  require_regular(path);
  int w = 0, h = 0, c = 0;
  if (!stbi_info(path.c_str(), &w, &h, &c)) throw Error(path.string() + ": " + why_not(path));
  return {c, stbi_is_16_bit(path.c_str()) != 0};
}

Image load_image(const fs::path& path) {
  require_regular(path);
  int w = 0, h = 0, c = 0;
  Image img;
  if (stbi_is_16_bit(path.c_str())) {
    stbi_us* data = stbi_load_16(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    img.pixels.resize(static_cast<size_t>(w) * h * c);
    for (size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>((data[i] * 255u + 32767u) / 65535u);
    stbi_image_free(data);
  } else {
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    img.pixels.assign(data, data + static_cast<size_t>(w) * h * c);
    stbi_image_free(data);
  }
  img.width = w;
  img.height = h;
  img.channels = c;
  return img;
}

namespace {
// Grey value (mean of the colour channels, times alpha) of each pixel, in 0..1, straight
// from the decoder's samples: no intermediate copy of a 12-megapixel mask.
template <typename Sample>
Mask mask_from(const Sample* data, int w, int h, int c, float full_scale) {
  Mask m{w, h, std::vector<float>(static_cast<size_t>(w) * h)};
  const bool alpha = c == 2 || c == 4;
  const int colour = alpha ? c - 1 : c;
  for (size_t i = 0; i < m.values.size(); ++i) {
    float s = 0;
    for (int k = 0; k < colour; ++k) s += float(data[i * c + k]);
    s /= float(colour) * full_scale;
    if (alpha) s *= float(data[i * c + c - 1]) / full_scale;
    m.values[i] = s;
  }
  return m;
}
}  // namespace

Mask load_mask(const fs::path& path) {
  require_regular(path);
  int w = 0, h = 0, c = 0;
  if (stbi_is_16_bit(path.c_str())) {
    stbi_us* data = stbi_load_16(path.c_str(), &w, &h, &c, 0);
    if (!data) throw Error(path.string() + ": " + why_not(path));
    Mask m = mask_from(data, w, h, c, 65535.f);
    stbi_image_free(data);
    return m;
  }
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 0);
  if (!data) throw Error(path.string() + ": " + why_not(path));
  Mask m = mask_from(data, w, h, c, 255.f);
  stbi_image_free(data);
  return m;
}

std::vector<uint16_t> load_samples16(const fs::path& path) {
  require_regular(path);
  if (!stbi_is_16_bit(path.c_str())) return {};
  int w = 0, h = 0, c = 0;
  stbi_us* data = stbi_load_16(path.c_str(), &w, &h, &c, 0);
  if (!data) throw Error(path.string() + ": " + why_not(path));
  std::vector<uint16_t> samples(data, data + size_t(w) * size_t(h) * size_t(c));
  stbi_image_free(data);
  return samples;
}

std::vector<uint16_t> widen_result(const std::vector<uint16_t>& input16, const Image& result) {
  const size_t c = size_t(result.channels), pixels = size_t(result.width) * size_t(result.height);
  if (input16.size() != pixels * c) throw Error("the 16-bit input and the result differ in size");
  std::vector<uint16_t> out(input16.size());
  for (size_t i = 0; i < pixels; ++i) {
    bool unchanged = true;  // at 8 bits, as load_image rounds the input
    for (size_t k = 0; k < c; ++k)
      unchanged = unchanged && result.pixels[i * c + k] == uint8_t((input16[i * c + k] * 255u + 32767u) / 65535u);
    for (size_t k = 0; k < c; ++k)
      out[i * c + k] = unchanged ? input16[i * c + k] : uint16_t(result.pixels[i * c + k] * 257u);
  }
  return out;
}

std::string image_format(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".png") return "png";
  if (ext == ".jpg" || ext == ".jpeg") return "jpeg";
  return "";
}

void save_image(const fs::path& path, const Image& img, const std::vector<uint16_t>* samples16,
                const std::function<bool()>& cancelled) {
  const std::string format = image_format(path);
  if (format.empty()) throw Error(path.string() + ": write .png, .jpg or .jpeg (the format follows the extension)");
  if (format == "jpeg" && (img.channels == 2 || img.channels == 4))
    throw Error(path.string() + ": JPEG has no alpha channel; write .png to keep it");
  const fs::path partial = partial_name(path);
  std::FILE* f = open_partial(partial);
  if (!f) throw Error(path.string() + ": cannot write: " + std::strerror(errno));
  bool ok = false;
  if (format == "jpeg") ok = stbi_write_jpg_to_func(write_to_file, f, img.width, img.height, img.channels, img.pixels.data(), 95);
  else if (samples16 && !samples16->empty()) ok = write_png16(f, img, *samples16);
  else ok = stbi_write_png_to_func(write_to_file, f, img.width, img.height, img.channels, img.pixels.data(),
                                   img.width * img.channels);
  ok = ok && !std::ferror(f) && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  ok = std::fclose(f) == 0 && ok;
  std::error_code ec;
  if (!ok) {
    fs::remove(partial, ec);
    throw Error(path.string() + ": cannot write the image: " + (err ? std::strerror(err) : "disk full?"));
  }
  if (cancelled && cancelled()) {
    fs::remove(partial, ec);
    throw Error(path.string() + ": cancelled, nothing written");
  }
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial, ec);
    throw Error(path.string() + ": cannot write: " + ec.message());
  }
}

Image to_rgb(const Image& in) {
  if (in.channels == 3) return in;
  Image out{in.width, in.height, 3, std::vector<uint8_t>(static_cast<size_t>(in.width) * in.height * 3)};
  for (size_t i = 0; i < static_cast<size_t>(in.width) * in.height; ++i)
    for (int k = 0; k < 3; ++k)
      out.pixels[i * 3 + k] = in.pixels[i * in.channels + (in.channels >= 3 ? k : 0)];
  return out;
}

}  // namespace inpaint
