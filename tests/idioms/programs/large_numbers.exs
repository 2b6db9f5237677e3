values = [300000, 1_0_0_0_0, 10_00, 123456789012345678901234567890, -99999]
IO.inspect(values)
Enum.sum(values)
# ---
floats = [1234567.5, 12345.678901e-3, 1_0000.0]
{floats, Enum.map(floats, &(&1 * 2))}
