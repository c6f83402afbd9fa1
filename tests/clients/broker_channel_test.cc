// The shared channel and status helpers.
#include "broker_channel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "referral/v1/broker.grpc.pb.h"

namespace referral::clients {
namespace {

TEST(ConnectToBrokerTest, RejectsAnEmptyAddress) {
  ChannelOptions options;
  options.address = "";
  EXPECT_EQ(ConnectToBroker(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConnectToBrokerTest, AnUnreachableBrokerIsUnavailableOnFirstCall) {
  ChannelOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.dedicated_connection = true;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToBroker(options);
  ASSERT_TRUE(channel.ok());
  auto stub = v1::Operations::NewStub(*channel);
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(10));
  v1::GetQueueStatsResponse response;
  const grpc::Status status =
      stub->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(StatusCodeName(status.error_code()), "UNAVAILABLE");
}

TEST(StatusTest, NamesAndConversion) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::NOT_FOUND), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::FAILED_PRECONDITION),
            "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(static_cast<grpc::StatusCode>(99)), "CODE_99");
  const absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "key reused"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "key reused");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(SetTimeoutTest, InfiniteMeansNoDeadline) {
  grpc::ClientContext context;
  SetTimeout(&context, absl::InfiniteDuration());
  EXPECT_EQ(context.deadline(), std::chrono::system_clock::time_point::max());
  grpc::ClientContext bounded;
  SetTimeout(&bounded, absl::Seconds(5));
  EXPECT_LT(bounded.deadline(),
            std::chrono::system_clock::now() + std::chrono::seconds(6));
}

}  // namespace
}  // namespace referral::clients
