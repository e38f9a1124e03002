"""HTTP handlers: parse with `proxy.protocol`, make one service call, render."""
