"""The secure-video camera model for tvOS 27 hubs (docs/secure-video.md), opt-in per camera.

So far: the TLV codecs of its characteristics (:mod:`.tlv`). The model is never mixed with the
classic RTP stream management (0x110) on one accessory.
"""
