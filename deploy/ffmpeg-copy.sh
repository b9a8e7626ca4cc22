#!/bin/sh
# Build an ffmpeg that holds only what a copy-mode camera's recording pipeline runs
# (docs/scaling.md, "A copy-mode ffmpeg built for copying").
#
#   deploy/ffmpeg-copy.sh SOURCE_DIR OUTPUT_FILE
#
# SOURCE_DIR is an unpacked FFmpeg source tree: the Docker image uses Debian's own source package
# (`apt-get source ffmpeg`), so the result is the same version, with the same patches, as the
# image's full ffmpeg. Why: Debian's ffmpeg links 214 shared libraries, and the dynamic linker
# writes about 8 MB of their data in every process it starts; this one links only libc, libm, zlib
# and GnuTLS, so each copy-mode camera's ffmpeg holds about 3.6 MB of private memory instead of 12.5.
#
# What it keeps: the inputs cameras and NVRs serve (RTSP and RTSPS, HTTP and HTTPS with MPEG-TS,
# FLV, fMP4/MP4, Matroska or HLS, RTMP, files and the sidecar's looping files), the parsers and
# bitstream filters a stream copy uses, the MP4 muxer, the decoders for the audio cameras send and
# the native AAC encoder (copy mode re-encodes audio to AAC-LC), and lavfi's anullsrc for the silent
# track. Encoding profiles, live views, snapshots and the detector keep the full ffmpeg.
set -eu

src=$1
out=$2
cd "$src"
./configure \
    --disable-everything --disable-autodetect --disable-doc --disable-x86asm --disable-programs \
    --enable-ffmpeg --disable-swscale --disable-postproc --enable-small \
    --enable-zlib --enable-gnutls \
    --enable-avdevice --enable-indev=lavfi \
    --enable-protocol=file,pipe,tcp,udp,rtp,http,https,tls,hls,crypto,rtmp,unix \
    --enable-demuxer=rtsp,rtp,sdp,mov,matroska,mpegts,hls,flv,live_flv,h264,hevc,aac,wav \
    --enable-muxer=mp4,mov,null \
    --enable-parser=h264,hevc,aac,opus,mpegaudio \
    --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,extract_extradata,aac_adtstoasc,null \
    --enable-decoder=h264,hevc,aac,opus,mp3,adpcm_g726,adpcm_g726le,pcm_alaw,pcm_mulaw,pcm_u8,pcm_s16le,pcm_s16be,pcm_s32le,pcm_f32le,pcm_f64le \
    --enable-encoder=aac \
    --enable-filter=null,anull,format,aformat,aresample,copy,acopy,anullsrc,asetnsamples,afifo,fifo,trim,atrim,setpts,asetpts \
    --extra-version=hksv-copy
make -j"$(nproc)" ffmpeg
install -m 0755 ffmpeg "$out"
