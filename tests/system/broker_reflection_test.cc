// gRPC server reflection on a real broker process: a client that knows no
// .proto file lists the services and rebuilds the whole API from the
// descriptors the broker sends, as grpcurl or grpc_cli would.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"

namespace referral {
namespace {

using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;
using ::referral::testing::BrokerProcess;
using ::referral::testing::TempDir;
using ::testing::IsSupersetOf;

class BrokerReflectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = BrokerProcess::Start({.data_dir = dir_.Sub("data")});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    stub_ = ServerReflection::NewStub(grpc::CreateChannel(
        broker_->address(), grpc::InsecureChannelCredentials()));
  }

  // One request and its answer on a fresh reflection stream.
  ServerReflectionResponse Ask(const ServerReflectionRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    auto stream = stub_->ServerReflectionInfo(&context);
    ServerReflectionResponse response;
    EXPECT_TRUE(stream->Write(request));
    EXPECT_TRUE(stream->WritesDone());
    EXPECT_TRUE(stream->Read(&response));
    ServerReflectionResponse extra;
    while (stream->Read(&extra)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<ServerReflection::Stub> stub_;
};

TEST_F(BrokerReflectionTest, ListsTheBrokerServices) {
  ServerReflectionRequest request;
  request.set_list_services("*");
  ServerReflectionResponse response = Ask(request);
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_THAT(
      names, IsSupersetOf({"referral.v1.ReferralIntake", "referral.v1.Triage",
                           "referral.v1.Operations", "grpc.health.v1.Health"}));
}

TEST_F(BrokerReflectionTest, DescribesEnoughToBuildAnyRequest) {
  // The file defining a service, and every file it imports, each asked for
  // by name as a tool resolves them.
  google::protobuf::DescriptorPool pool;
  std::vector<std::string> pending;
  std::set<std::string> seen;
  {
    ServerReflectionRequest request;
    request.set_file_containing_symbol("referral.v1.ReferralIntake");
    ServerReflectionResponse response = Ask(request);
    ASSERT_TRUE(response.has_file_descriptor_response())
        << response.error_response().error_message();
    std::vector<google::protobuf::FileDescriptorProto> files;
    for (const std::string& bytes :
         response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      seen.insert(file.name());
      files.push_back(file);
    }
    // Dependencies first: build from the leaves up.
    while (!files.empty()) {
      bool progressed = false;
      for (auto it = files.begin(); it != files.end();) {
        bool ready = true;
        for (const std::string& dependency : it->dependency()) {
          if (pool.FindFileByName(dependency) == nullptr) {
            if (!seen.count(dependency)) pending.push_back(dependency);
            ready = false;
          }
        }
        if (ready) {
          ASSERT_NE(pool.BuildFile(*it), nullptr) << it->name();
          it = files.erase(it);
          progressed = true;
        } else {
          ++it;
        }
      }
      // Fetch what is still missing by file name.
      for (const std::string& name : pending) {
        if (!seen.insert(name).second) continue;
        ServerReflectionRequest request_file;
        request_file.set_file_by_filename(name);
        ServerReflectionResponse file_response = Ask(request_file);
        ASSERT_TRUE(file_response.has_file_descriptor_response()) << name;
        for (const std::string& bytes :
             file_response.file_descriptor_response().file_descriptor_proto()) {
          google::protobuf::FileDescriptorProto file;
          ASSERT_TRUE(file.ParseFromString(bytes));
          seen.insert(file.name());
          files.push_back(file);
          progressed = true;
        }
      }
      pending.clear();
      ASSERT_TRUE(progressed) << "reflection left imports unresolved";
    }
  }

  const google::protobuf::ServiceDescriptor* intake =
      pool.FindServiceByName("referral.v1.ReferralIntake");
  ASSERT_NE(intake, nullptr);
  const google::protobuf::MethodDescriptor* submit =
      intake->FindMethodByName("SubmitReferral");
  ASSERT_NE(submit, nullptr);
  EXPECT_EQ(submit->input_type()->full_name(),
            "referral.v1.SubmitReferralRequest");
  EXPECT_NE(submit->input_type()->FindFieldByName("idempotency_key"), nullptr);
  const google::protobuf::FieldDescriptor* referral =
      submit->input_type()->FindFieldByName("referral");
  ASSERT_NE(referral, nullptr);
  // Deep enough to fill in a child's details.
  EXPECT_NE(referral->message_type()->FindFieldByName("children"), nullptr);
}

}  // namespace
}  // namespace referral
