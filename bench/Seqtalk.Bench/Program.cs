using Seqtalk.Bench;

// Seqtalk benchmarks. Modes:
//   gemm [filter]   MatMul kernels at the issue-3 shapes: naive check, GFLOP/s, fraction of the FMA peak.
if (args.Length > 0 && args[0] == "gemm") return GemmBench.Run(args.Skip(1).ToArray());

Console.Error.WriteLine("usage: dotnet run -c Release --project bench/Seqtalk.Bench -- gemm [shape-filter]");
return 2;
