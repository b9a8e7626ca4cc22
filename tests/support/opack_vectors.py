"""OPACK test vectors shared by the codec tests and the HAP-NodeJS interop tests: messages as
HAP-NodeJS encodes them, and what they decode to."""

from __future__ import annotations

# Messages as HAP-NodeJS 1.2.0 encodes them (captured with tests/hds/node/hn_codec.js).
HN_INIT_EVENT = (
    "e34873747265616d49640f477061636b657473d1e244646174617c000000186674797069736f6d486d65746164617461e548"
    "6461746154797065536d65646961496e697469616c697a6174696f6e526461746153657175656e63654e756d6265720957"
    "646174614368756e6b53657175656e63654e756d626572094f69734c617374446174614368756e6b014d64617461546f74"
    "616c53697a65144b656e644f6653747265616d02"
)

# What HN_INIT_EVENT decodes to: a dataSend data event carrying a 12-byte init segment.
INIT_EVENT_VALUE: dict[str, object] = {
    "streamId": 7,
    "packets": [
        {
            "data": bytes.fromhex("000000186674797069736f6d"),
            "metadata": {
                "dataType": "mediaInitialization",
                "dataSequenceNumber": 1,
                "dataChunkSequenceNumber": 1,
                "isLastDataChunk": True,
                "dataTotalSize": 12,
            },
        }
    ],
    "endOfStream": False,
}

HN_OPEN_REQUEST = (
    "e4467461726765744a636f6e74726f6c6c6572447479706552697063616d6572612e7265636f7264696e674873747265616d"
    "49640946726561736f6e466d6f74696f6e"
)
HN_CLOSE_EVENT = "e24873747265616d49640946726561736f6e0e"
