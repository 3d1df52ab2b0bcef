"""cocotb benches (run inside the simulator) and the Verilator runner glue."""
