using Seqtalk.Bench;

// Seqtalk benchmarks. Modes:
//   gemm [filter]   MatMul kernels at the issue-3 shapes: naive check, GFLOP/s, fraction of the FMA peak.
//   serve [--seconds S] [--model DIR] [--quick] [--repeat N] [--clients 1,8,64] [--only on|off] [--wait-ms MS] [--profile]
//         HTTP replies/s with dynamic batching on vs off (issue 5); --profile times the stages of a served reply.
//   workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--reply-epochs N]   issue 3's five workloads (Workloads.cs).
if (args.Length > 0 && args[0] == "gemm") return GemmBench.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "serve") return ServeBench.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "workloads") return Workloads.Run(args.Skip(1).ToArray());

Console.Error.WriteLine("usage: dotnet run -c Release --project bench/Seqtalk.Bench -- gemm [shape-filter] | serve [--seconds S] [--model DIR] [--quick] [--repeat N] [--clients 1,8,64] [--only on|off] [--wait-ms MS] [--profile] | workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--reply-epochs N]");
return 2;
