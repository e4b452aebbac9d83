using Seqtalk.Bench;

// Seqtalk benchmarks. Modes:
//   gemm [filter]   MatMul kernels at the issue-3 shapes: naive check, GFLOP/s, fraction of the FMA peak.
//   workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--reply-epochs N]   issue 3's five workloads (Workloads.cs).
if (args.Length > 0 && args[0] == "gemm") return GemmBench.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "workloads") return Workloads.Run(args.Skip(1).ToArray());

Console.Error.WriteLine("usage: dotnet run -c Release --project bench/Seqtalk.Bench -- gemm [shape-filter] | workloads [--threads N] [--json FILE] [--quick] [--data PATH]");
return 2;
