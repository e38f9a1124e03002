"""What spm-proxy keeps: blobs, the metadata index and the checksum ledger."""
